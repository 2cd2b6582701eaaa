"""Mutation fuzz of the audio parsing path that ``complete`` runs.

Takes the real fixtures (``../shared/fixtures/audio`` beside the repository, or
``AUDIO_FIXTURES_DIR`` as for the tests), mutates
them with a seeded generator (bit flips, "interesting" integers written over length
fields, truncation, chunk deletion/duplication/insertion), and feeds each mutant through
exactly what verification does: a budgeted :class:`RangedReader`, ``sniff_container`` on
the first 64 KiB, then ``measure_duration_ms`` for the sniffed container (and for the
original's container, so mutants whose magic broke still reach the parser).

A case is a **crasher** when anything other than ``UnreadableAudio`` or
``ReadBudgetExceeded`` escapes, when it takes longer than ``--case-seconds`` (a hang),
or when the reader was asked for more than its budget in one allocation. Crashers are
shrunk (shortest prefix that still fails the same way) and, with ``--save DIR``, written
there as regression fixtures that tests/completion/test_hostile_audio.py replays.

    .venv/bin/python bench/fuzz_audio.py --cases 50000 --seed 13
    .venv/bin/python bench/fuzz_audio.py --cases 2000 --save tests/fixtures/audio-crashers

Bounded: ``--cases`` mutants in total, each parse capped by SIGALRM. Exit status 1 when
any crasher was found.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import random
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advanced_notes.domain.audio import SNIFF_BYTES, UnreadableAudio, measure_duration_ms, sniff_container
from advanced_notes.domain.rangeio import RangedReader, ReadBudgetExceeded
from testkit.paths import FIXTURES as AUDIO_FIXTURES

FIXTURES = AUDIO_FIXTURES
#: The same budget the service uses by default (settings.audio_probe_max_bytes).
BUDGET = 8 * 1024 * 1024
_CONTAINER_BY_SUFFIX = {".m4a": "mp4", ".mp3": "mp3", ".wav": "wav", ".ogg": "ogg", ".webm": "webm", ".flac": "flac"}
_INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x3FFFFFFF]


class Hang(Exception):
    """A parse ran past its time limit."""


def _alarm(_signum, _frame):
    raise Hang()


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One mutant of ``data``: 1-4 stacked mutations, biased to the first 4 KiB (headers)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not out:
            break
        head = min(len(out), 4096) if rng.random() < 0.8 else len(out)
        pos = rng.randrange(head)
        kind = rng.randrange(7)
        if kind == 0:  # bit flip
            out[pos] ^= 1 << rng.randrange(8)
        elif kind == 1:  # random byte
            out[pos] = rng.randrange(256)
        elif kind == 2:  # an interesting integer over a (maybe) length field
            width = rng.choice((1, 2, 4, 8))
            value = rng.choice(_INTERESTING) & ((1 << (8 * width)) - 1)
            out[pos : pos + width] = value.to_bytes(width, rng.choice(("big", "little")))
        elif kind == 3:  # truncate
            del out[rng.randrange(len(out)) :]
        elif kind == 4:  # delete a chunk
            del out[pos : pos + rng.randint(1, 64)]
        elif kind == 5:  # duplicate a chunk
            chunk = out[pos : pos + rng.randint(1, 64)]
            out[pos:pos] = chunk
        else:  # insert random bytes
            out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(out)


def verify_like_complete(data: bytes, declared_container: str) -> str:
    """Run ``data`` through the verification path; return the outcome's name.

    Returns ``ok``, ``not_audio``, ``unreadable``, ``budget``; raises anything else.
    """
    outcomes = []
    for forced in (None, declared_container):
        reader = RangedReader(lambda s, e: data[s : e + 1], len(data), max_fetch_bytes=BUDGET)
        container = sniff_container(reader.read(SNIFF_BYTES)) if forced is None else forced
        if container is None:
            outcomes.append("not_audio")
            continue
        try:
            measure_duration_ms(reader, container)
            outcomes.append("ok")
        except UnreadableAudio:
            outcomes.append("unreadable")
        except ReadBudgetExceeded:
            outcomes.append("budget")
    return outcomes[0]


def failure_of(data: bytes, container: str, case_seconds: float) -> str | None:
    """None when ``data`` is handled; else a short signature of how it failed."""
    signal.setitimer(signal.ITIMER_REAL, case_seconds)
    try:
        verify_like_complete(data, container)
        return None
    except Hang:
        return "Hang"
    except Exception as exc:  # the point of a fuzz: anything that escapes is a finding
        return type(exc).__name__
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def shrink(data: bytes, container: str, signature: str, case_seconds: float) -> bytes:
    """The shortest prefix of ``data`` that still fails with ``signature`` (bisection)."""
    low, high = 1, len(data)
    while low < high:
        mid = (low + high) // 2
        if failure_of(data[:mid], container, case_seconds) == signature:
            high = mid
        else:
            low = mid + 1
    return data[:high] if failure_of(data[:high], container, case_seconds) == signature else data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--case-seconds", type=float, default=2.0)
    parser.add_argument("--save", type=Path, help="write shrunk crashers into this folder")
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, _alarm)
    seeds = {p: p.read_bytes() for p in sorted(FIXTURES.glob("note.*")) if p.suffix in _CONTAINER_BY_SUFFIX}
    rng = random.Random(args.seed)
    outcomes: collections.Counter[str] = collections.Counter()
    crashers: dict[tuple[str, str], bytes] = {}
    started = time.monotonic()
    for _ in range(args.cases):
        path = rng.choice(list(seeds))
        container = _CONTAINER_BY_SUFFIX[path.suffix]
        mutant = mutate(seeds[path], rng)
        signal.setitimer(signal.ITIMER_REAL, args.case_seconds)
        try:
            outcomes[verify_like_complete(mutant, container)] += 1
        except Hang:
            outcomes["crash:Hang"] += 1
            crashers.setdefault((path.suffix, "Hang"), mutant)
        except Exception as exc:
            outcomes[f"crash:{type(exc).__name__}"] += 1
            crashers.setdefault((path.suffix, type(exc).__name__), mutant)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    elapsed = time.monotonic() - started
    crashes = sum(n for k, n in outcomes.items() if k.startswith("crash:"))
    print(f"cases: {args.cases}; seed: {args.seed}; seconds: {elapsed:.1f}; crashes: {crashes}")
    print("outcomes: " + ", ".join(f"{k}: {n}" for k, n in sorted(outcomes.items())))
    for (suffix, signature), mutant in sorted(crashers.items()):
        small = shrink(mutant, _CONTAINER_BY_SUFFIX[suffix], signature, args.case_seconds)
        name = f"{suffix[1:]}-{signature}-{hashlib.sha256(small).hexdigest()[:8]}{suffix}"
        print(f"crasher {name}: {len(small)} bytes (from {len(mutant)})")
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            (args.save / name).write_bytes(small)
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
