"""The media engine's speed and memory, side by side with the ffmpeg command line, in one run.

For recordings of 1, 10 and 60 minutes (the spoken fixture looped by Debian's ffmpeg),
in two forms: a streamed Opus WebM (a MediaRecorder's output: no Duration, no Cues) and
an MP3, each is processed ``--repeat`` times, alternately

- by the engine (``advanced_notes.media.process_file``) in a child Python process;
- by one ``ffmpeg`` command doing the same work with one decode: the stream-copy remux
  into a WebM with Duration and Cues (WebM only), the same AAC-LC rendition (same rate,
  channels and bitrate, ``+faststart``), ``ebur128=peak=true``, and the mono PCM that
  peaks are computed from (``f32le`` to ``/dev/null``: the command line's peaks cost
  nothing here, so the comparison favours ffmpeg).

Two command lines run beside the engine: Debian's (5.1, the machine's, independent of the
project) and one of FFmpeg's current generation (the static build that imageio-ffmpeg's
wheel carries, pinned in the ``bench`` extra; ``--references`` picks them). PyAV's wheels
ship FFmpeg 8.1, and FFmpeg's native AAC encoder spends more CPU since 5.1 on the same
PCM (``--aac-only`` shows it; docs/benchmarks.md has the figures), so the current-generation command line is the one
that does the same work as the engine; Debian's shows what the newer encoder costs.

CPU time is user + system: for ffmpeg, the child's resource usage (``wait4``); for the
engine, the child's own usage around ``process_file`` (a worker imports the engine once,
not per job; the whole child's, imports included, is printed too). Printed per input and
command line: the medians over the repeats of seconds of audio per CPU-second (per core)
and of wall time, the ratio of the medians (engine/ffmpeg), and each child's peak RSS (the
largest over the repeats). A child that only imports the engine gives the RSS floor.

``--aac-only`` compares the part that dominates both: decode, AAC encode and MP4 mux, in
a PyAV loop with no other Python work against ``ffmpeg -c:a aac`` alone.

Usage: ``.venv/bin/python bench/processing.py [--minutes 1 10 60] [--repeat 3] [--aac-only]
[--references debian current]``; needs Debian's ffmpeg (it also makes the inputs) and the
``bench`` extra. Figures depend on the machine and its load (printed at start and end).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advanced_notes.media.aac import AAC_BITRATE_BPS, aac_rate
from testkit.paths import FIXTURES as AUDIO_FIXTURES

ROOT = str(Path(__file__).resolve().parents[1])
ENGINE = f"""
import json, resource, sys, time
sys.path.insert(0, {ROOT!r})
from pathlib import Path
from advanced_notes.media import MediaLimits, process_file
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
before, started = cpu(), time.monotonic()
r = process_file(Path(sys.argv[1]), Path(sys.argv[2]), limits=MediaLimits(max_seconds=3600))
print(json.dumps({{"cpu": cpu() - before, "wall": time.monotonic() - started, "duration_ms": r.duration_ms}}))
"""
#: ``--aac-only``: PyAV's FFmpeg doing only what dominates the work (decode, AAC encode, MP4
#: mux), with no more Python than the loop, against the command line doing the same.
AAC_ONLY = f"""
import json, resource, sys, time
sys.path.insert(0, {ROOT!r})
import av
from advanced_notes.media.aac import AacWriter
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
before, started = cpu(), time.monotonic()
src = av.open(sys.argv[1])
stream = src.streams.audio[0]
writer = AacWriter(__import__("pathlib").Path(sys.argv[2]) / "universal.m4a", stream.rate, stream.channels)
for packet in src.demux(stream):
    for frame in packet.decode():
        writer.write(frame)
writer.write(None)
writer.close()
print(json.dumps({{"cpu": cpu() - before, "wall": time.monotonic() - started, "duration_ms": 0}}))
"""
IMPORT_ONLY = f"import sys; sys.path.insert(0, {ROOT!r}); import advanced_notes.media, numpy, av"


@dataclass
class Run:
    """One child's figures: CPU and wall seconds of the work, peak RSS (MiB), whole child's CPU."""

    cpu: float
    wall: float
    rss_mib: int
    child_cpu: float


def run(argv: list[str]) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds, peak RSS in MiB, stdout) of a child running ``argv``."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - started
        out.seek(0)
        text = out.read().decode()
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{argv[:3]} failed with {os.waitstatus_to_exitcode(status)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024, text


def make_input(workdir: Path, minutes: int, kind: str) -> Path:
    """A ``kind`` (webm or mp3) recording of ``minutes`` minutes: the fixture looped."""
    path = workdir / f"{minutes}min.{kind}"
    codec = (
        ["-c:a", "libopus", "-b:a", "32k", "-f", "webm"]
        if kind == "webm"
        else ["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"]
    )
    loop = ["-stream_loop", "-1", "-i", str(AUDIO_FIXTURES / "note.wav"), "-t", str(minutes * 60)]
    with path.open("wb") as f:  # a pipe: the WebM is written as it streams (no Duration, no Cues)
        subprocess.run(["ffmpeg", "-v", "error", *loop, *codec, "pipe:"], stdout=f, check=True)
    return path


def reference_commands(names: list[str]) -> dict[str, str]:
    """The ffmpeg executables to compare with, by name: ``debian`` (the machine's) and
    ``current`` (imageio-ffmpeg's static build of FFmpeg's current generation)."""
    found = {}
    for name in names:
        if name == "debian":
            found[name] = "ffmpeg"
        else:
            import imageio_ffmpeg  # the bench extra; only this reference needs it

            found[name] = imageio_ffmpeg.get_ffmpeg_exe()
    return found


def ffmpeg_version(executable: str) -> str:
    """``ffmpeg -version``'s first line's version word (e.g. ``5.1.9-0+deb12u1``)."""
    first = subprocess.run([executable, "-version"], capture_output=True, text=True, check=True).stdout.split("\n")[0]
    return first.split()[2]


def ffmpeg_argv(executable: str, source: Path, out: Path, kind: str, rate: int, aac_only: bool = False) -> list[str]:
    """One ffmpeg command doing the engine's work with one decode: every output of it
    (``aac_only``: the AAC rendition alone)."""
    argv = [executable, "-v", "error", "-nostdin", "-y", "-i", str(source)]
    if aac_only:
        argv += ["-map", "0:a:0", "-c:a", "aac", "-b:a", str(AAC_BITRATE_BPS[1]), "-ar", str(aac_rate(rate))]
        return [*argv, "-ac", "1", "-movflags", "+faststart", str(out / "universal.m4a")]
    if kind == "webm":
        argv += ["-map", "0:a:0", "-c", "copy", "-f", "webm", str(out / "seekable.webm")]
    argv += ["-map", "0:a:0", "-c:a", "aac", "-b:a", str(AAC_BITRATE_BPS[1]), "-ar", str(aac_rate(rate)), "-ac", "1"]
    argv += ["-movflags", "+faststart", str(out / "universal.m4a")]
    argv += ["-map", "0:a:0", "-af", "ebur128=peak=true", "-f", "null", "-"]
    argv += ["-map", "0:a:0", "-af", "aformat=sample_fmts=flt:channel_layouts=mono", "-f", "f32le", os.devnull]
    return argv


def engine_run(source: Path, out: Path, aac_only: bool = False) -> Run:
    """The engine on ``source`` in a fresh child, its outputs in ``out`` (``aac_only``: see AAC_ONLY)."""
    _, child_cpu, rss, text = run([sys.executable, "-c", AAC_ONLY if aac_only else ENGINE, str(source), str(out)])
    figures = json.loads(text)
    return Run(figures["cpu"], figures["wall"], rss, child_cpu)


def ffmpeg_run(executable: str, source: Path, out: Path, kind: str, rate: int, aac_only: bool = False) -> Run:
    """The ffmpeg command line ``executable`` on ``source``, its outputs in ``out``."""
    wall, cpu, rss, _ = run(ffmpeg_argv(executable, source, out, kind, rate, aac_only))
    return Run(cpu, wall, rss, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, nargs="+", default=[1, 10, 60])
    parser.add_argument("--kinds", nargs="+", default=["webm", "mp3"])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, alternating; medians are printed")
    parser.add_argument(
        "--aac-only", action="store_true", help="both sides make the AAC rendition only (decode, encode, mux)"
    )
    parser.add_argument(
        "--references",
        nargs="+",
        choices=["debian", "current"],
        default=["debian", "current"],
        help="the command lines to compare with (see the module's docstring)",
    )
    args = parser.parse_args()
    references = reference_commands(args.references)
    _, _, floor_mib, _ = run([sys.executable, "-c", IMPORT_ONLY])
    import av  # only for its version line; the engine runs in children

    print(f"RSS floor (a child that imports the engine, PyAV and numpy): {floor_mib} MiB")
    print(f"engine: PyAV {av.__version__} with FFmpeg {av.ffmpeg_version_info}")
    for name, executable in references.items():
        print(f"ffmpeg {name}: {ffmpeg_version(executable)}")
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {args.repeat} runs each")
    print(
        "input        audio_s | engine: x/cpu-s  cpu_s  child_cpu_s  wall_s  rss_MiB"
        " | ffmpeg      x/cpu-s  cpu_s  wall_s  rss_MiB | ratio"
    )
    with tempfile.TemporaryDirectory(prefix="bench-processing-") as tmp:
        root = Path(tmp)
        for minutes in args.minutes:
            for kind in args.kinds:
                source = make_input(root, minutes, kind)
                rate = 48_000 if kind == "webm" else 16_000
                engine: list[Run] = []
                ffmpeg: dict[str, list[Run]] = {name: [] for name in references}
                for i in range(args.repeat):
                    # Rotate who goes first, so no side always meets another's cache state.
                    sides = ["engine", *references]
                    sides = sides[i % len(sides) :] + sides[: i % len(sides)]
                    for side in sides:
                        out = root / f"{side}-{minutes}-{kind}-{i}"
                        out.mkdir()
                        if side == "engine":
                            engine.append(engine_run(source, out, args.aac_only))
                        else:
                            ffmpeg[side].append(ffmpeg_run(references[side], source, out, kind, rate, args.aac_only))
                        for path in out.iterdir():
                            path.unlink()
                print_rows(source.name, minutes * 60, engine, ffmpeg)
                source.unlink()
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    print(
        "x/cpu-s: seconds of audio per CPU-second (per core), median; cpu_s: the work's CPU seconds, median;"
        " child_cpu_s: the engine's whole child, imports included; ratio: engine/ffmpeg x/cpu-s"
    )


def print_rows(name: str, audio_s: int, engine: list[Run], ffmpeg: dict[str, list[Run]]) -> None:
    """One line per command line: the engine's medians beside that command line's."""
    e_cpu = statistics.median(r.cpu for r in engine)
    e_speed = audio_s / e_cpu
    engine_part = (
        f"{e_speed:>15.1f}  {e_cpu:>5.2f}  {statistics.median(r.child_cpu for r in engine):>11.2f}"
        f"  {statistics.median(r.wall for r in engine):>6.2f}  {max(r.rss_mib for r in engine):>7}"
    )
    for reference, runs in ffmpeg.items():
        f_cpu = statistics.median(r.cpu for r in runs)
        f_speed = audio_s / f_cpu
        print(
            f"{name:<12} {audio_s:>7} | {engine_part}"
            f" | {reference:<8} {f_speed:>10.1f}  {f_cpu:>5.2f}  {statistics.median(r.wall for r in runs):>6.2f}"
            f"  {max(r.rss_mib for r in runs):>7} | {e_speed / f_speed:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
