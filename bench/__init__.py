"""Benchmarks (not tests): ``python -m bench``. The README's *Performance* section has the commands and the figures."""
