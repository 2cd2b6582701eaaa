"""Benchmarks, load, chaos and fuzzing scripts that print figures (``python -m bench.fuzz``).

What they share with the tests (servers on loopback, the real audio fixtures, crafted
files, the schemathesis runner) is in ``testkit``; ``bench`` and ``tests`` never import each other."""
