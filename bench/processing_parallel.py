"""Throughput of the media engine with 1 and 2 worker processes on the same jobs.

``--jobs`` independent jobs (a streamed Opus WebM of ``--minutes`` minutes, the spoken
fixture looped by Debian's ffmpeg; each job its own copy and its own workdir) go through
a pool of 1, then 2 processes, as a Celery worker with ``--concurrency 1`` or ``2`` runs
them: each process imports the engine once and takes one job at a time. Before the clock
starts, every process has imported the engine and processed the short fixture (warm, as
a worker that has run before). Rounds alternate 1 and 2 processes ``--rounds`` times.

Printed per round: the wall time from the first job handed out to the last one done,
throughput (seconds of audio per wall second), the CPU seconds the jobs used (their
processes' own usage, summed) and the load average; then the medians and the speed-up of
2 processes over 1 (median throughput ratio). On a machine shared with other jobs the
speed-up is bounded by the CPU the others leave: compare the CPU seconds too. Where the
kernel groups processes by session (``/proc/sys/kernel/sched_autogroup_enabled``), a
session gets one share of the CPU however many processes it runs, so while other
sessions keep every core busy, 2 processes get no more CPU than 1; ``--own-session``
puts each pool process in a session of its own (as separate worker machines or idle
cores would give them their own CPU).

Usage: ``.venv/bin/python bench/processing_parallel.py [--jobs 8] [--minutes 2] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.paths import FIXTURES as AUDIO_FIXTURES


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _warm(barrier: Any, workdir: str, own_session: bool) -> None:
    """Pool initializer: import the engine, process the short fixture, wait for the others."""
    from advanced_notes.media import MediaLimits, process_file

    if own_session:
        os.setsid()  # its own scheduler autogroup (see --own-session)

    out = Path(tempfile.mkdtemp(dir=workdir))
    process_file(AUDIO_FIXTURES / "note.webm", out, limits=MediaLimits())
    shutil.rmtree(out)
    barrier.wait()


def _job(args: tuple[str, str]) -> tuple[float, int]:
    """One job: (CPU seconds of this process for it, decoded duration in ms)."""
    from advanced_notes.media import MediaLimits, process_file

    source, workdir = args
    out = Path(tempfile.mkdtemp(dir=workdir))
    before = _cpu()
    result = process_file(Path(source), out, limits=MediaLimits(max_seconds=3600))
    used = _cpu() - before
    shutil.rmtree(out)
    return used, result.duration_ms


def make_input(path: Path, minutes: int) -> None:
    """A streamed Opus WebM of ``minutes`` minutes (the fixture looped), as a MediaRecorder writes."""
    loop = ["-stream_loop", "-1", "-i", str(AUDIO_FIXTURES / "note.wav"), "-t", str(minutes * 60)]
    with path.open("wb") as f:
        subprocess.run(
            ["ffmpeg", "-v", "error", *loop, "-c:a", "libopus", "-b:a", "32k", "-f", "webm", "pipe:"],
            stdout=f,
            check=True,
        )


def one_round(processes: int, sources: list[Path], workdir: Path, own_session: bool) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds summed over the jobs, audio seconds) of the jobs on ``processes``."""
    context = multiprocessing.get_context("fork")  # as Celery's prefork pool
    barrier = context.Barrier(processes + 1)
    with context.Pool(processes, initializer=_warm, initargs=(barrier, str(workdir), own_session)) as pool:
        barrier.wait()
        started = time.monotonic()
        results = pool.map(_job, [(str(s), str(workdir)) for s in sources], chunksize=1)
        wall = time.monotonic() - started
    return wall, sum(cpu for cpu, _ in results), sum(ms for _, ms in results) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--minutes", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--own-session",
        action="store_true",
        help="each pool process in its own session, so its own scheduler autogroup (see the docstring)",
    )
    args = parser.parse_args()
    print(f"{args.jobs} jobs of a {args.minutes}-minute WebM; {os.cpu_count()} CPUs")
    print("processes  wall_s  audio_s/wall_s  cpu_s  audio_s/cpu_s  load_avg")
    throughput: dict[int, list[float]] = {1: [], 2: []}
    cpu: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="bench-parallel-") as tmp:
        root = Path(tmp)
        first = root / "job-0.webm"
        make_input(first, args.minutes)
        sources = [first]
        for i in range(1, args.jobs):  # each job reads its own file, as each download is its own
            sources.append(root / f"job-{i}.webm")
            shutil.copyfile(first, sources[-1])
        for _ in range(args.rounds):
            for processes in (1, 2):
                wall, used, audio = one_round(processes, sources, root, args.own_session)
                throughput[processes].append(audio / wall)
                cpu[processes].append(used)
                print(
                    f"{processes:>9}  {wall:>6.1f}  {audio / wall:>14.1f}  {used:>5.1f}  {audio / used:>13.1f}"
                    f"  {os.getloadavg()[0]:>8.1f}",
                    flush=True,
                )
    one, two = statistics.median(throughput[1]), statistics.median(throughput[2])
    print(
        f"median audio_s/wall_s: 1 process {one:.1f}, 2 processes {two:.1f}; speed-up {two / one:.2f}x;"
        f" median CPU s: {statistics.median(cpu[1]):.1f} / {statistics.median(cpu[2]):.1f}"
    )


if __name__ == "__main__":
    main()
