"""Targets: what to build and where to measure it, declared in profiles (``targets/*.toml``)."""
