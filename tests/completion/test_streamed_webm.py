"""WebM written as it streams (MediaRecorder with a timeslice) is audio with a duration.

The fixtures in tests/fixtures/streamed/ were recorded in headless Chromium with its fake
microphone by ``record.py`` beside them (``recorder.start(250)``); their MANIFEST.tsv
has each one's length by a full decode in the same browser. Their Segment and Clusters
have an unknown size and there is no SeekHead, Cues or Duration (asserted below), which
enzyme cannot read: complete once rejected them as ``unreadable_audio``.
"""

from __future__ import annotations

import csv
import io

import pytest

from advanced_notes.domain import webm
from advanced_notes.domain.audio import UnreadableAudio, measure_duration_ms, sniff_container
from advanced_notes.domain.rangeio import RangedReader
from testkit.live import AudioFixture, put_upload
from tests.helpers import STREAMED, shift_cluster_timecodes

#: A full decode and the walk differ by at most a frame of Opus (20..60 ms).
TOLERANCE_MS = 60


def streamed() -> list[dict[str, str]]:
    with (STREAMED / "MANIFEST.tsv").open() as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.fixture(params=streamed(), ids=lambda row: row["file"])
def recording(request) -> AudioFixture:
    row = request.param
    path = STREAMED / row["file"]
    assert path.stat().st_size == int(row["bytes"])
    return AudioFixture(row["file"], path, int(row["bytes"]), row["sha256_base64"], int(row["decoded_duration_ms"]))


def test_the_fixtures_are_streamed_webm(recording):
    data = recording.data
    segment = data.index(webm.SEGMENT.to_bytes(4, "big"))
    assert data[segment + 4 : segment + 12] == b"\x01\xff\xff\xff\xff\xff\xff\xff"  # unknown size
    assert webm.DURATION.to_bytes(2, "big") + b"\x88" not in data[: segment + 200]
    assert b"\x11\x4d\x9b\x74" not in data  # no SeekHead


def test_a_streamed_webm_is_measured_over_ranged_reads(recording):
    data = recording.data
    reader = RangedReader(lambda start, end: data[start : end + 1], len(data), block_bytes=4096)
    assert sniff_container(reader.read(65536)) == "webm"
    measured = measure_duration_ms(reader, "webm")
    assert abs(measured - recording.duration_ms) <= TOLERANCE_MS, (measured, recording.duration_ms)


def test_only_the_head_and_the_tail_are_read():
    # A long streamed recording: the fixture's clusters repeated with growing timecodes.
    data = (STREAMED / "streamed-4s.webm").read_bytes()
    first = data.index(webm.CLUSTER.to_bytes(4, "big"))
    body = data[first:]
    copies, span_ms = 200, 4500
    parts = [data[:first]]
    for i in range(copies):
        parts.append(shift_cluster_timecodes(body, i * span_ms))
    long = b"".join(parts)  # about 13 MB, 15 minutes
    reader = RangedReader(lambda start, end: long[start : end + 1], len(long), max_fetch_bytes=1024 * 1024)
    measured = measure_duration_ms(reader, "webm")
    assert abs(measured - copies * span_ms) <= TOLERANCE_MS
    assert reader.bytes_fetched <= 4 * 65536


def test_a_file_cut_inside_its_last_cluster_is_still_measured_up_to_the_cut():
    data = (STREAMED / "streamed-4s.webm").read_bytes()
    measured = measure_duration_ms(io.BytesIO(data[: len(data) // 2]), "webm")
    assert measured is not None and 1000 < measured < 3500


@pytest.mark.parametrize("cut", [30, 100])
def test_a_file_cut_in_its_header_is_unreadable(cut):
    data = (STREAMED / "streamed-1s.webm").read_bytes()
    with pytest.raises(UnreadableAudio):
        measure_duration_ms(io.BytesIO(data[:cut]), "webm")


@pytest.mark.e2e
def test_complete_accepts_a_streamed_recording(api, recording):
    created = api.create(recording, checksum_sha256=recording.sha256_base64)
    assert put_upload(created["upload"], recording.data).status_code == 200
    done = api("POST", f"/api/audio-clips/{created['clip']['id']}/complete")
    assert done.status_code == 200, done.text
    clip = done.json()["clip"]
    assert clip["status"] == "ready"
    assert abs(clip["measured_duration_ms"] - recording.duration_ms) <= TOLERANCE_MS
