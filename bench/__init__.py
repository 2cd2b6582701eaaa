"""Benchmarks, load, chaos and fuzzing scripts. The loopback harness and the fuzzer are
importable (``bench.loopback``, ``bench.fuzz``; run them with ``python -m bench.fuzz``)
so tests reuse them without touching ``sys.path``."""
