"""Command-line tools: sr-export and sr-bench."""
