"""Benchmarks: the gateway against a direct upstream, nginx proxy_pass and a bare aiohttp proxy.

``python -m bench`` (see bench/README.md). Not part of the installed package; CI runs only a short
smoke of it (tests/ops/test_bench_smoke.py).
"""
