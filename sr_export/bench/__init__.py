"""Measuring: complexity, quality and speed."""
