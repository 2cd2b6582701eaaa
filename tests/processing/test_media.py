"""The media engine (advanced_notes.media) on the real fixtures, checked against FFmpeg's CLI.

Debian's ``ffmpeg``/``ffprobe`` are an independent reference here (another FFmpeg build
than the one in PyAV's wheels, run as another process): they read every rendition,
decode the originals for the peaks, and measure loudness with ``-af ebur128=peak=true``.
Tests needing them skip, saying so, where they are absent (.ci/run installs them).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from advanced_notes.domain import webm
from advanced_notes.media import MediaError, MediaLimits, MediaResult, process_file
from advanced_notes.media.engine import normalization_gain_db
from advanced_notes.media.peaks import MAX_PIXELS, PeakAccumulator, quantize8
from testkit.longaudio import build_long_wav
from testkit.paths import AUDIO_FILES, FIXTURES

STREAMED = Path(__file__).resolve().parents[1] / "fixtures" / "streamed"
HAVE_FFMPEG = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None
needs_ffmpeg = pytest.mark.skipif(
    not HAVE_FFMPEG, reason="Debian's ffmpeg/ffprobe (the independent reference) are not installed"
)
#: A rendition's duration (ffprobe) and the decoded duration of the original may differ
#: by the encoder's frame granularity.
RENDITION_TOLERANCE_MS = 50
#: Opus pre-skip that FFmpeg 8 (PyAV's wheels) keeps at the start of a WebM and Debian's
#: FFmpeg 5.1 drops: the engine's decode may lead the reference's by up to this.
MAX_LEAD_SAMPLES = 312

#: Every input: the real fixtures, a MediaRecorder stream (Chromium), and one made below.
INPUTS = [*AUDIO_FILES, "streamed-4s.webm", "piped-stereo.webm"]


def _ffprobe(path: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", *args, str(path)],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def _reference_mono(path: Path) -> np.ndarray:
    """The original decoded by the ffmpeg CLI, mixed to mono as the engine documents (the mean)."""
    channels = int(_ffprobe(path, "-select_streams", "a:0", "-show_streams")["streams"][0]["channels"])
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(pcm, dtype=np.float32).reshape(-1, channels).mean(axis=1)


EBUR128 = ("-af", "ebur128=peak=true")


def _ebur128(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) from the summary of ``ffmpeg -af ebur128=peak=true``."""
    log = subprocess.run(
        ["ffmpeg", "-nostats", "-hide_banner", "-i", str(path), "-map", "0:a:0", *EBUR128, "-f", "null", "-"],
        capture_output=True,
        check=True,
        text=True,
    ).stderr
    summary = log[log.rindex("Summary:") :]
    integrated = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    assert integrated and peak, summary
    return float(integrated.group(1)), float(peak.group(1))


PIPED_STEREO = ("-af", "pan=stereo|c0=c0|c1=-0.5*c0", "-ar", "44100", "-c:a", "libvorbis", "-f", "webm")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    paths = {name: FIXTURES / name for name in AUDIO_FILES}
    paths["streamed-4s.webm"] = STREAMED / "streamed-4s.webm"
    if HAVE_FFMPEG:
        # Stereo Vorbis at 44.1 kHz written to a pipe: the muxer cannot seek back, so the
        # WebM has no Duration and no Cues. The right channel is -0.5 x the left, so a
        # wrong mono mix shows in the peaks.
        piped = tmp_path_factory.mktemp("piped") / "piped-stereo.webm"
        with piped.open("wb") as out:
            subprocess.run(
                ["ffmpeg", "-v", "error", "-i", str(FIXTURES / "note.wav"), *PIPED_STEREO, "pipe:"],
                stdout=out,
                check=True,
            )
        paths["piped-stereo.webm"] = piped
    return paths


@pytest.fixture(scope="module")
def processed(inputs, tmp_path_factory) -> dict[str, MediaResult]:
    results = {}
    for name, path in inputs.items():
        workdir = tmp_path_factory.mktemp(name.replace(".", "-"))
        results[name] = process_file(path, workdir, limits=MediaLimits(max_seconds=60))
    return results


def _result(processed: dict[str, MediaResult], name: str) -> MediaResult:
    if name not in processed:
        pytest.skip("made with Debian's ffmpeg, which is not installed")
    return processed[name]


@pytest.mark.parametrize("name", INPUTS)
def test_every_input_gets_a_duration_loudness_and_peaks(processed, audio, name):
    result = _result(processed, name)
    # Every note.* is one 6288 ms sentence (note.wav: 100615 samples at 16 kHz), encoded.
    # The exact duration is the decode's: note.mp3's 6322 in MANIFEST.tsv counts the
    # encoder's padding, which the gapless decode drops. AAC in MP4 and Opus in WebM keep a
    # few ms of codec delay that FFmpeg's decode does not trim (see MAX_LEAD_SAMPLES).
    # The piped Vorbis has no end trim (its muxer could not go back to write it): its last
    # block's padding is audio to any decoder.
    expected_ms = {"streamed-4s.webm": 4500}.get(name, 6288)  # streamed: its MANIFEST.tsv
    tolerance_ms = 25 if name == "piped-stereo.webm" else 5
    assert abs(result.duration_ms - expected_ms) <= tolerance_ms, (result.duration_ms, expected_ms)
    assert result.duration_ms == round(result.samples * 1000 / result.sample_rate)
    assert -40 < result.loudness.integrated_lufs < 0
    assert -20 < result.loudness.true_peak_dbtp < 3
    doc = json.loads(result.peaks.path.read_text())
    assert {k: doc[k] for k in ("version", "channels", "bits")} == {"version": 2, "channels": 1, "bits": 8}
    assert doc["sample_rate"] == result.sample_rate
    assert doc["length"] == result.peaks.length == len(doc["data"]) // 2 <= MAX_PIXELS + 1
    assert doc["samples_per_pixel"] * (doc["length"] - 1) < result.samples <= doc["samples_per_pixel"] * doc["length"]
    assert all(-128 <= v <= 127 for v in doc["data"])
    mins, maxs = doc["data"][0::2], doc["data"][1::2]
    assert all(lo <= hi for lo, hi in zip(mins, maxs, strict=True))


@needs_ffmpeg
@pytest.mark.parametrize("name", INPUTS)
def test_ffprobe_reads_every_rendition(processed, name):
    result = _result(processed, name)
    made = [r for r in (result.seekable, result.universal) if r.path is not None]
    for rendition in made:
        assert rendition.path is not None
        probe = _ffprobe(rendition.path, "-show_format", "-show_streams")
        (stream,) = probe["streams"]
        assert stream["codec_name"] == rendition.codec
        duration_ms = float(probe["format"]["duration"]) * 1000
        assert abs(duration_ms - result.duration_ms) <= RENDITION_TOLERANCE_MS, (rendition.name, duration_ms)
        if rendition.name == "universal":
            assert stream["codec_name"] == "aac" and stream["profile"] == "LC"
            assert int(stream["sample_rate"]) in (44_100, 48_000) and stream["channels"] <= 2
            assert int(stream["sample_rate"]) == rendition.sample_rate
            data = rendition.path.read_bytes()
            assert data.index(b"moov") < data.index(b"mdat"), "movflags=+faststart puts the index first"
        else:
            assert stream["codec_name"] in ("opus", "vorbis")


def test_the_universal_rendition_is_skipped_for_aac_lc_in_mp4(processed):
    universal = processed["note.m4a"].universal
    assert universal.path is None and universal.skipped == "already AAC-LC in MP4"
    assert not (processed["note.m4a"].peaks.path.parent / "universal.m4a").exists()
    assert all(processed[name].universal.path is not None for name in AUDIO_FILES if name != "note.m4a")


def test_the_seekable_rendition_is_only_for_webm_without_duration_or_cues(processed):
    assert processed["note.webm"].seekable.skipped == "already has Duration and Cues"
    for name in ("note.m4a", "note.mp3", "note.wav", "note.ogg", "note.flac"):
        seekable = processed[name].seekable
        assert seekable.path is None and seekable.skipped and "not WebM" in seekable.skipped
    assert processed["streamed-4s.webm"].seekable.path is not None


def _seek_index(path: Path) -> webm.SeekIndex:
    with path.open("rb") as f:
        return webm.seek_index(f, path.stat().st_size)


@needs_ffmpeg
@pytest.mark.parametrize("name", ["streamed-4s.webm", "piped-stereo.webm"])
def test_the_seekable_remux_has_duration_and_cues_and_the_same_packets(processed, inputs, name):
    original, seekable = inputs[name], _result(processed, name).seekable.path
    assert seekable is not None
    assert _seek_index(original) == webm.SeekIndex(has_duration=False, has_cues=False)
    assert _seek_index(seekable) == webm.SeekIndex(has_duration=True, has_cues=True)
    assert "duration" not in _ffprobe(original, "-show_format")["format"]
    duration_ms = float(_ffprobe(seekable, "-show_format")["format"]["duration"]) * 1000
    assert abs(duration_ms - processed[name].duration_ms) <= RENDITION_TOLERANCE_MS

    def packets(path: Path) -> list[tuple[int, str]]:
        shown = _ffprobe(path, "-select_streams", "a:0", "-show_packets", "-show_data_hash", "SHA256")
        return [(int(p["size"]), p["data_hash"]) for p in shown["packets"]]

    # No re-encode: the same packets, byte for byte, in the same order.
    assert packets(seekable) == packets(original)
    probe = _ffprobe(seekable, "-show_streams")["streams"][0]
    assert probe["codec_name"] == _ffprobe(original, "-show_streams")["streams"][0]["codec_name"]


def test_seek_index_reads_a_seekable_and_a_streamed_webm():
    assert _seek_index(FIXTURES / "note.webm") == webm.SeekIndex(has_duration=True, has_cues=True)
    assert _seek_index(STREAMED / "streamed-1s.webm") == webm.SeekIndex(has_duration=False, has_cues=False)


@needs_ffmpeg
@pytest.mark.parametrize("name", INPUTS)
def test_peaks_agree_with_an_independent_decode(processed, inputs, name):
    result = _result(processed, name)
    doc = json.loads(result.peaks.path.read_text())
    spp, length = doc["samples_per_pixel"], doc["length"]
    reference = _reference_mono(inputs[name])
    lead = result.samples - len(reference)
    assert 0 <= lead <= (MAX_LEAD_SAMPLES if result.codec == "opus" else 0), lead
    # Pixel i covers the engine's samples [i*spp, (i+1)*spp), the reference's shifted by lead.
    padded = np.concatenate((np.zeros(lead, np.float32), reference))
    padded = np.concatenate((padded, np.full(spp * length - len(padded), np.nan, np.float32)))
    windows = padded.reshape(length, spp)
    ref_min = quantize8(np.nanmin(windows, axis=1)).astype(int)
    ref_max = quantize8(np.nanmax(windows, axis=1)).astype(int)
    first = 1 if lead else 0  # the first pixel holds samples the reference dropped
    got_min = np.array(doc["data"][0::2])[first:]
    got_max = np.array(doc["data"][1::2])[first:]
    assert np.abs(got_min - ref_min[first:]).max() <= 1
    assert np.abs(got_max - ref_max[first:]).max() <= 1
    assert ref_max.max() - ref_min.min() > 50, "speech: the comparison is not over silence"


@needs_ffmpeg
@pytest.mark.parametrize("name", INPUTS)
def test_loudness_agrees_with_ffmpeg_ebur128(processed, inputs, name):
    result = _result(processed, name)
    integrated, true_peak = _ebur128(inputs[name])
    assert abs(result.loudness.integrated_lufs - integrated) <= 0.5, (result.loudness, integrated)
    assert abs(result.loudness.true_peak_dbtp - true_peak) <= 0.5, (result.loudness, true_peak)


@needs_ffmpeg
def test_the_normalized_rendition_reaches_the_target_under_the_peak_ceiling(tmp_path, audio):
    result = process_file(audio["note.wav"].path, tmp_path, limits=MediaLimits(), normalize=True, target_lufs=-23.0)
    assert result.normalized is not None and result.normalized.path is not None
    gain = normalization_gain_db(result.loudness, -23.0)
    assert gain < -2  # the original is at about -20 LUFS: turned down
    integrated, true_peak = _ebur128(result.normalized.path)
    assert abs(integrated - (result.loudness.integrated_lufs + gain)) <= 0.5
    assert abs(integrated - -23.0) <= 0.5
    assert true_peak <= -1.0 + 0.5
    probe = _ffprobe(result.normalized.path, "-show_format", "-show_streams")
    assert probe["streams"][0]["codec_name"] == "aac"
    assert abs(float(probe["format"]["duration"]) * 1000 - result.duration_ms) <= RENDITION_TOLERANCE_MS


def test_normalization_gain_stops_at_minus_one_dbtp():
    from advanced_notes.media import Loudness

    assert normalization_gain_db(Loudness(-30.0, -3.0, 5.0), -16.0) == 2.0  # peak-limited
    assert normalization_gain_db(Loudness(-20.0, -10.0, 5.0), -16.0) == 4.0  # loudness-limited
    assert normalization_gain_db(Loudness(-70.0, float("-inf"), 0.0), -16.0) == 0.0  # silence


@pytest.mark.parametrize(
    ("name", "reasons"),
    [
        ("impostor-html.m4a", {"not_audio"}),
        ("not-audio.html", {"not_audio"}),
        ("truncated.m4a", {"not_audio", "corrupt"}),
    ],
)
def test_impostors_raise_a_media_error_quickly(tmp_path, audio, name, reasons):
    started = time.monotonic()
    with pytest.raises(MediaError) as caught:
        process_file(audio[name].path, tmp_path, limits=MediaLimits())
    assert caught.value.reason in reasons
    assert str(tmp_path) not in caught.value.message and "ffmpeg" not in caught.value.message.lower()
    assert time.monotonic() - started < 5


def _damaged(tmp_path: Path, source: Path, start: float, end: float) -> Path:
    """``source`` with the bytes from fraction ``start`` to ``end`` of it replaced by noise."""
    data = bytearray(source.read_bytes())
    first, last = int(len(data) * start), int(len(data) * end)
    data[first:last] = np.random.default_rng(1).integers(0, 256, last - first, dtype=np.uint8).tobytes()
    path = tmp_path / f"damaged-{source.name}"
    path.write_bytes(bytes(data))
    return path


def test_a_few_damaged_packets_are_skipped_as_ffmpeg_does(tmp_path, audio):
    # About 2 KB of noise in the middle of an MP3: the decoder rejects a frame and resyncs.
    damaged = _damaged(tmp_path, audio["note.mp3"].path, 0.33, 0.37)
    result = process_file(damaged, tmp_path, limits=MediaLimits())
    assert result.skipped_packets >= 1
    assert 5_000 < result.duration_ms < 6_300
    assert result.universal.path is not None and result.universal.path.stat().st_size > 10_000
    assert process_file(audio["note.mp3"].path, tmp_path, limits=MediaLimits()).skipped_packets == 0


def test_a_badly_damaged_stream_is_corrupt(tmp_path, audio):
    damaged = _damaged(tmp_path, audio["note.m4a"].path, 0.3, 0.7)
    with pytest.raises(MediaError) as caught:
        process_file(damaged, tmp_path, limits=MediaLimits())
    assert caught.value.reason == "corrupt"


def test_an_empty_file_is_not_audio(tmp_path):
    empty = tmp_path / "empty.webm"
    empty.write_bytes(b"")
    with pytest.raises(MediaError) as caught:
        process_file(empty, tmp_path, limits=MediaLimits())
    assert caught.value.reason == "not_audio"


def test_a_file_past_the_duration_limit_stops_early(tmp_path, audio):
    # About 5 minutes of WAV; the limit is 2 seconds.
    long = tmp_path / "long.wav"
    long.write_bytes(build_long_wav(audio["note.wav"].path, 10_000_000))
    started = time.monotonic()
    with pytest.raises(MediaError) as caught:
        process_file(long, tmp_path, limits=MediaLimits(max_duration_ms=2_000))
    assert caught.value.reason == "too_long"
    assert time.monotonic() - started < 5, "stops at the limit, not at the end of the file"


def test_a_run_past_the_wall_time_limit_stops(tmp_path, audio):
    with pytest.raises(MediaError) as caught:
        process_file(audio["note.wav"].path, tmp_path, limits=MediaLimits(max_seconds=0.0))
    assert caught.value.reason == "timeout"


@pytest.mark.parametrize("seed", range(5))
def test_merged_peaks_equal_peaks_computed_at_the_final_resolution(seed):
    rng = np.random.default_rng(seed)
    samples = rng.uniform(-1, 1, int(rng.integers(1, 400_000))).astype(np.float32)
    accumulator = PeakAccumulator(48_000, samples_per_pixel=8, max_pixels=100)
    at = 0
    while at < len(samples):  # chunks of any size, as decoders give frames
        step = int(rng.integers(1, 5000))
        accumulator.add(samples[at : at + step])
        at += step
    waveform = accumulator.result()
    spp = waveform.samples_per_pixel
    assert waveform.length <= 101 and waveform.length == -(-len(samples) // spp)
    for i in range(waveform.length):
        window = samples[i * spp : (i + 1) * spp]
        assert waveform.mins[i] == window.min() and waveform.maxs[i] == window.max()


def test_quantize8_is_the_top_byte_of_a_16_bit_sample():
    s16 = np.array([-32768, -257, -256, -1, 0, 255, 256, 32767])
    assert quantize8(s16 / 32768.0).tolist() == (s16 >> 8).tolist()
    assert quantize8(np.array([-1.5, 1.0, 1.5])).tolist() == [-128, 127, 127]


@pytest.mark.parametrize("kind", ["flac", "mp4", "wav", "webm", "ogg"])
def test_the_crafted_files_of_the_verification_audit_are_processed(tmp_path, kind):
    """The hardening audit's crafted files (millions of tiny header elements around real
    frames) decode as the 6.3 s note they carry: done, with peaks and loudness; the WebM
    one, whose head holds no index, gets the seekable rendition."""
    from testkit import crafted_audio

    data = getattr(crafted_audio, f"crafted_{kind}")(size=2_000_000)
    source = tmp_path / f"crafted.{kind}"
    source.write_bytes(data)
    workdir = tmp_path / "out"
    workdir.mkdir()
    result = process_file(source, workdir, limits=MediaLimits(max_seconds=60))
    assert 6200 < result.duration_ms < 6400
    assert result.peaks.length > 0
    assert (result.seekable.path is not None) == (kind == "webm")


def test_seek_index_reads_a_bounded_head(tmp_path):
    """A head of more top-level elements than any recorder writes is refused after
    MAX_HEAD_ELEMENTS of them (the engine then remuxes), not walked to its end."""
    from testkit import crafted_audio

    reads = 0

    class Counting(io.BytesIO):
        def read(self, size=-1):  # type: ignore[override]
            nonlocal reads
            reads += 1
            return super().read(size)

    data = crafted_audio.crafted_webm(size=2_000_000)  # about a million Voids
    with pytest.raises(webm.WebmError, match="top-level elements"):
        webm.seek_index(Counting(data), len(data))
    assert reads < 20 * webm.MAX_HEAD_ELEMENTS


@needs_ffmpeg
def test_more_than_two_channels_are_downmixed_and_measured(tmp_path, audio):
    """A 5.1 FLAC at 44.1 kHz (every channel the spoken note at a different gain): the
    universal rendition is stereo at 44.1 kHz, the peaks are the mean of the six channels,
    and the loudness is the command line's."""
    gains = (1.0, 0.5, 0.25, 0.75, 0.1, 0.6)
    pan = "5.1|" + "|".join(f"c{i}={g}*c0" for i, g in enumerate(gains))
    source = tmp_path / "six.flac"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(audio["note.wav"].path), "-af", f"pan={pan}", "-ar", "44100", str(source)],
        check=True,
    )
    workdir = tmp_path / "out"
    workdir.mkdir()
    result = process_file(source, workdir, limits=MediaLimits(max_seconds=60))
    assert result.channels == 6 and abs(result.duration_ms - 6288) <= 5
    assert result.universal.path is not None
    (stream,) = _ffprobe(result.universal.path, "-show_streams")["streams"]
    assert (stream["codec_name"], stream["channels"], int(stream["sample_rate"])) == ("aac", 2, 44_100)
    doc = json.loads(result.peaks.path.read_text())
    reference = _reference_mono(source)
    spp = doc["samples_per_pixel"]
    padded = np.concatenate((reference, np.full(spp * doc["length"] - len(reference), np.nan, np.float32)))
    windows = padded.reshape(doc["length"], spp)
    assert np.abs(np.array(doc["data"][1::2]) - quantize8(np.nanmax(windows, axis=1)).astype(int)).max() <= 1
    assert np.abs(np.array(doc["data"][0::2]) - quantize8(np.nanmin(windows, axis=1)).astype(int)).max() <= 1
    integrated, true_peak = _ebur128(source)
    assert abs(result.loudness.integrated_lufs - integrated) <= 0.5
    assert abs(result.loudness.true_peak_dbtp - true_peak) <= 0.5
