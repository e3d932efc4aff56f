"""Benchmark-specific row preparers (filtering, reshaping, option shuffling), registered by name."""
