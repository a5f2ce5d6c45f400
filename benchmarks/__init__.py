"""Benchmarks: speed and quality ratios measured in one run against a named baseline (`make bench`)."""
