"""Benchmarks (not tests): ``python -m bench``. See bench/README.md."""
