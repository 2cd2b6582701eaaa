"""Verification is bounded in work, not only in bytes: crafted structure is ``audio_too_complex``.

The crafted files (testkit/crafted_audio.py) fit the 8 MiB byte budget but hold
millions of tiny header elements. Before the read/seek cap the FLAC one took about 30 s of
CPU and answered 200 ready; the MP4 and WAV ones spent seconds and hundreds of MiB before
running out of bytes. Real recordings of every container, including 3 h / 100 MiB ones,
need at most 187 calls, under a twentieth of the cap, and stay well inside the bounds.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from advanced_notes.domain.audio import SNIFF_BYTES, measure_duration_ms, sniff_container
from advanced_notes.domain.rangeio import ProbeTooComplex, RangedReader
from advanced_notes.services import verification
from advanced_notes.settings import Settings
from testkit.crafted_audio import BUILDERS, all_crafted
from testkit.live import put_upload
from testkit.longaudio import build_long_wav
from tests.helpers import STREAMED, assert_error, create, shift_cluster_timecodes

CRAFTED = {c.name: c for c in all_crafted()}
DEFAULT_MAX_READS = Settings.model_fields["audio_probe_max_reads"].default


def reader_over(data: bytes, **kw) -> RangedReader:
    return RangedReader(lambda start, end: data[start : end + 1], len(data), max_fetch_bytes=8 << 20, **kw)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_complete_of_crafted_audio_is_rejected_as_too_complex(client, auth, name):
    crafted = CRAFTED[name]
    created = create(client, auth, mime_type=crafted.mime_type, bytes=len(crafted.data))
    assert put_upload(created["upload"], crafted.data).status_code == 200
    clip_id = created["clip"]["id"]
    response = client.post(f"/api/audio-clips/{clip_id}/complete", headers=auth)
    error = assert_error(response, 422, "upload_rejected")
    assert error["details"]["reason"] == "audio_too_complex"
    assert f"over {DEFAULT_MAX_READS} header reads" in error["message"]
    assert "re-encode" in error["message"]
    assert client.get(f"/api/audio-clips/{clip_id}", headers=auth).get_json()["clip"]["status"] == "rejected"


def test_a_rejected_parse_gives_its_memory_back_and_a_clean_one_does_not(client, auth, audio, monkeypatch):
    # A spy on the call (its effect on RSS is glibc's, tested in operations/test_heap.py and
    # measured on real workers by bench/perf/focus.py hostile).
    calls = []
    monkeypatch.setattr(verification, "release_free_heap", lambda: calls.append(1) or True)
    crafted = CRAFTED["crafted.m4a"]
    for data, mime_type, expected in (
        (audio["note.m4a"].data, "audio/mp4", 200),
        (crafted.data, crafted.mime_type, 422),
    ):
        created = create(client, auth, mime_type=mime_type, bytes=len(data))
        assert put_upload(created["upload"], data).status_code == 200
        response = client.post(f"/api/audio-clips/{created['clip']['id']}/complete", headers=auth)
        assert response.status_code == expected, response.get_json()
        assert len(calls) == (expected == 422)


def test_crafted_files_are_sized_as_asked():
    for build, _ in BUILDERS.values():
        data = build(100 << 20)
        assert (100 << 20) - 64 * 1024 < len(data) <= 100 << 20


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_the_cap_stops_a_crafted_file_after_that_many_calls(name):
    crafted = CRAFTED[name]
    reader = reader_over(crafted.data, max_calls=1000)
    container = sniff_container(reader.read(SNIFF_BYTES))
    with pytest.raises(ProbeTooComplex) as raised:
        measure_duration_ms(reader, container)
    assert raised.value.max_calls == 1000 and reader.calls == 1001
    with pytest.raises(ProbeTooComplex):  # a parser swallowing the error cannot carry on
        reader.read(1)


def test_the_deadline_stops_parsing_and_does_not_count_waiting_for_the_store():
    data = CRAFTED["crafted.flac"].data

    def slow_fetch(start: int, end: int) -> bytes:
        time.sleep(0.2)
        return data[start : end + 1]

    # Waiting for the store (0.2 s per block, over a 0.1 s deadline) is not parsing.
    reader = RangedReader(slow_fetch, len(data), max_seconds=0.1)
    assert len(reader.read(3 * 64 * 1024)) == 3 * 64 * 1024
    reader = reader_over(data, max_seconds=0.05)
    container = sniff_container(reader.read(SNIFF_BYTES))
    with pytest.raises(ProbeTooComplex) as raised:
        measure_duration_ms(reader, container)
    assert raised.value.seconds == 0.05 and raised.value.max_calls is None


def _long_streamed_webm() -> bytes:
    data = (STREAMED / "streamed-4s.webm").read_bytes()
    first = data.index(b"\x1f\x43\xb6\x75")
    parts = [data[:first]] + [shift_cluster_timecodes(data[first:], i * 4500) for i in range(1500)]
    return b"".join(parts)  # about 98 MB, 1 h 52 min


@pytest.mark.parametrize("name", ["note.flac", "note.m4a", "note.mp3", "note.ogg", "note.wav", "note.webm"])
def test_real_fixtures_take_a_twentieth_of_the_cap_at_most(audio, name):
    reader = reader_over(audio[name].data, max_calls=DEFAULT_MAX_READS)
    container = sniff_container(reader.read(SNIFF_BYTES))
    assert measure_duration_ms(reader, container) is not None
    assert reader.calls <= DEFAULT_MAX_READS // 20, reader.calls


@pytest.mark.parametrize("kind", ["wav", "streamed-webm"])
def test_long_real_recordings_stay_far_inside_the_cap(audio, kind):
    if kind == "wav":
        data, expected_ms = build_long_wav(audio["note.wav"].path, (100 << 20) - 65536), None
    else:
        data, expected_ms = _long_streamed_webm(), 1500 * 4500
    reader = reader_over(data, max_calls=DEFAULT_MAX_READS, max_seconds=5)
    container = sniff_container(reader.read(SNIFF_BYTES))
    measured = measure_duration_ms(reader, container)
    assert measured is not None and measured > 3_000_000
    if expected_ms:
        assert abs(measured - expected_ms) <= 60
    assert reader.calls <= DEFAULT_MAX_READS // 20, reader.calls


def test_a_long_real_recording_completes_ready(client, auth, audio):
    data = build_long_wav(audio["note.wav"].path, 40 << 20)
    created = create(client, auth, mime_type="audio/wav", bytes=len(data))
    assert put_upload(created["upload"], data).status_code == 200
    response = client.post(f"/api/audio-clips/{created['clip']['id']}/complete", headers=auth)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["clip"]["measured_duration_ms"] > 1_000_000


def test_generator_writes_the_files(tmp_path: Path):
    from testkit import crafted_audio

    crafted_audio.main([str(tmp_path), "--bytes", "300000"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(BUILDERS)
    assert all(p.stat().st_size <= 300000 for p in tmp_path.iterdir())
