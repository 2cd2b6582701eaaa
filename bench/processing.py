"""The media engine's speed and memory, side by side with the ffmpeg command line.

For recordings of 1, 10 and 60 minutes (the spoken fixture looped by Debian's ffmpeg),
in two forms: a streamed Opus WebM (a MediaRecorder's output: no Duration, no Cues) and
an MP3, each is processed

- by the engine (``advanced_notes.media.process_file``) in a child Python process;
- by one ``ffmpeg`` command doing the same work: the same AAC-LC rendition (same rate,
  channels and bitrate, ``+faststart``), ``ebur128=peak=true``, and for the WebM the
  stream-copy remux; ffmpeg makes no waveform peaks, the engine does.

Printed per run: seconds of audio processed per CPU-second (user + system of the child:
per core), the wall time, the engine/ffmpeg ratio, and the child's peak RSS (from
``wait4``). A child that only imports the engine gives the RSS floor.

Usage: ``.venv/bin/python bench/processing.py [--minutes 1 10 60]``; needs Debian's
ffmpeg. Figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advanced_notes.media.engine import AAC_BITRATE_BPS, aac_rate
from testkit.paths import FIXTURES as AUDIO_FIXTURES

ENGINE = """
import sys
from pathlib import Path
from advanced_notes.media import MediaLimits, process_file
r = process_file(Path(sys.argv[1]), Path(sys.argv[2]), limits=MediaLimits(max_seconds=3600))
print(r.duration_ms, r.seekable.path is not None, r.universal.path is not None)
"""
IMPORT_ONLY = "import advanced_notes.media, numpy, av"


def run(argv: list[str]) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds, peak RSS in MiB, stdout) of a child running ``argv``."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        out.seek(0)
        text = out.read().decode()
    if child.returncode:
        raise SystemExit(f"{argv[:3]} failed with {child.returncode}")
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


def ffmpeg_argv(source: Path, out: Path, kind: str, rate: int) -> list[str]:
    """One ffmpeg command doing the engine's work but the peaks: one decode, every output."""
    argv = ["ffmpeg", "-v", "error", "-y", "-i", str(source)]
    if kind == "webm":
        argv += ["-map", "0:a:0", "-c", "copy", "-f", "webm", str(out / "seekable.webm")]
    argv += ["-map", "0:a:0", "-c:a", "aac", "-b:a", str(AAC_BITRATE_BPS[1]), "-ar", str(aac_rate(rate)), "-ac", "1"]
    argv += ["-movflags", "+faststart", str(out / "universal.m4a")]
    argv += ["-map", "0:a:0", "-af", "ebur128=peak=true", "-f", "null", "-"]
    return argv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, nargs="+", default=[1, 10, 60])
    parser.add_argument("--kinds", nargs="+", default=["webm", "mp3"])
    args = parser.parse_args()
    python = sys.executable
    env_root = str(Path(__file__).resolve().parents[1])
    prelude = f"import sys; sys.path.insert(0, {env_root!r})\n"
    _, _, floor_mib, _ = run([python, "-c", prelude + IMPORT_ONLY])
    print(f"RSS floor (a child that imports the engine, PyAV and numpy): {floor_mib} MiB")
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    header = "input        audio_s  engine: x/cpu-s  wall_s  rss_MiB | ffmpeg: x/cpu-s  wall_s  rss_MiB | ratio"
    print(header)
    with tempfile.TemporaryDirectory(prefix="bench-processing-") as tmp:
        root = Path(tmp)
        for minutes in args.minutes:
            for kind in args.kinds:
                source = make_input(root, minutes, kind)
                audio_s = minutes * 60
                rate = 48_000 if kind == "webm" else 16_000
                out_engine, out_ffmpeg = root / f"e-{minutes}-{kind}", root / f"f-{minutes}-{kind}"
                out_engine.mkdir()
                out_ffmpeg.mkdir()
                e_wall, e_cpu, e_rss, _ = run(
                    [
                        python,
                        "-c",
                        prelude + ENGINE,
                        str(source),
                        str(out_engine),
                    ]
                )
                f_wall, f_cpu, f_rss, _ = run(ffmpeg_argv(source, out_ffmpeg, kind, rate))
                e_speed, f_speed = audio_s / e_cpu, audio_s / f_cpu
                print(
                    f"{source.name:<12} {audio_s:>7}  {e_speed:>15.0f}  {e_wall:>6.1f}  {e_rss:>7} |"
                    f" {f_speed:>15.0f}  {f_wall:>6.1f}  {f_rss:>7} | {e_speed / f_speed:.2f}"
                )
                for path in (source, *out_engine.iterdir(), *out_ffmpeg.iterdir()):
                    path.unlink()
    print("x/cpu-s: seconds of audio processed per CPU-second of the child (per core); ratio: engine/ffmpeg")


if __name__ == "__main__":
    main()
