"""Hostile audio at complete: every parser failure is 422 unreadable_audio, memory stays bounded.

The crashers under tests/fixtures/audio-crashers/ were found by
bench/fuzz_audio.py against the code before the fix (each raised something other than
UnreadableAudio out of the parser, which complete answered with a 500).
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from advanced_notes.domain.audio import SNIFF_BYTES, UnreadableAudio, measure_duration_ms, sniff_container
from advanced_notes.domain.errors import StorageUnavailable
from advanced_notes.domain.rangeio import RangedReader, ReadBudgetExceeded
from testkit.live import put_upload
from tests.helpers import assert_error, create

CRASHERS = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "audio-crashers").iterdir())
CONTAINER_BY_SUFFIX = {".m4a": "mp4", ".mp3": "mp3", ".wav": "wav", ".ogg": "ogg", ".webm": "webm", ".flac": "flac"}
MIME_BY_SUFFIX = {".m4a": "audio/mp4", ".mp3": "audio/mpeg", ".wav": "audio/wav", ".ogg": "audio/ogg"}
MIME_BY_SUFFIX |= {".webm": "audio/webm", ".flac": "audio/flac"}


def reader_over(data: bytes, **kw) -> RangedReader:
    return RangedReader(lambda start, end: data[start : end + 1], len(data), **kw)


def test_there_are_crashers_to_replay():
    assert len(CRASHERS) >= 3, CRASHERS


@pytest.mark.parametrize("path", CRASHERS, ids=lambda p: p.name)
def test_fuzz_crashers_are_unreadable_audio(path):
    data = path.read_bytes()
    # As the fuzz found them: parsed as the container their name says, whatever the sniff says.
    with pytest.raises(UnreadableAudio):
        measure_duration_ms(reader_over(data, max_fetch_bytes=8 << 20), CONTAINER_BY_SUFFIX[path.suffix])


def test_mp3_cut_inside_its_id3_tag_is_unreadable_not_a_store_failure(audio):
    # mutagen's short read is a bare OSError: it used to be re-raised as if the store failed.
    data = audio["note.mp3"].data[:30]
    reader = reader_over(data)
    assert sniff_container(reader.read(SNIFF_BYTES)) == "mp3"
    with pytest.raises(UnreadableAudio):
        measure_duration_ms(reader, "mp3")


def test_a_store_failure_inside_the_parser_is_still_the_store_failure(audio):
    data = audio["note.mp3"].data

    def fetch(start: int, end: int) -> bytes:
        if start > 0:
            raise StorageUnavailable("The object store could not be reached; retry later.")
        return data[start : end + 1]

    with pytest.raises(StorageUnavailable):
        measure_duration_ms(RangedReader(fetch, len(data), block_bytes=1024), "mp3")


@pytest.mark.parametrize("suffix", [".mp3", ".webm"])
def test_complete_of_a_crasher_is_422_unreadable_audio_and_rejects(client, auth, audio, suffix):
    """Through the API and moto's server: a 500 that left the clip pending before."""
    if suffix == ".mp3":
        data = audio["note.mp3"].data[:30]
    else:
        data = next(p for p in CRASHERS if p.suffix == suffix).read_bytes()
    created = create(client, auth, mime_type=MIME_BY_SUFFIX[suffix], bytes=len(data))
    assert put_upload(created["upload"], data).status_code == 200
    clip_id = created["clip"]["id"]
    for _ in range(2):  # the second call sees the recorded verdict, not a second parse
        response = client.post(f"/api/audio-clips/{clip_id}/complete", headers=auth)
        if response.status_code == 422:
            assert assert_error(response, 422, "upload_rejected")["details"]["reason"] == "unreadable_audio"
        else:
            assert_error(response, 409, "conflict")
    assert client.get(f"/api/audio-clips/{clip_id}", headers=auth).get_json()["clip"]["status"] == "rejected"


# -- memory amplification --------------------------------------------------------


def crafted_mp3(claimed_tag_bytes: int, size: int):
    """A ``fetch`` over a ``size``-byte MP3 whose ID3v2 header claims a tag of ``claimed_tag_bytes``.

    The object is virtual (zeros after the 10-byte header), so the test holds no 100 MiB.
    """
    synchsafe = bytes((claimed_tag_bytes >> shift) & 0x7F for shift in (21, 14, 7, 0))
    header = b"ID3\x04\x00\x00" + synchsafe

    def fetch(start: int, end: int) -> bytes:
        block = bytearray(end - start + 1)
        if start < len(header):
            piece = header[start : end + 1]
            block[: len(piece)] = piece
        return bytes(block)

    return fetch


@pytest.mark.parametrize("claimed", [(100 << 20) - 1024, 7 << 20], ids=["claims-100MiB", "claims-7MiB"])
def test_peak_memory_of_one_verification_stays_near_the_budget(claimed):
    """An ID3 header claiming ~100 MiB made one verification allocate 100.6 MiB (8 MiB budget).

    The 7 MiB claim is the worst case that fits the budget: it is fetched, then refused.
    """
    budget = 8 << 20
    size = 100 << 20
    reader = RangedReader(crafted_mp3(claimed, size), size, max_fetch_bytes=budget)
    assert sniff_container(reader.read(SNIFF_BYTES)) == "mp3"
    tracemalloc.start()
    try:
        with pytest.raises(ReadBudgetExceeded):
            measure_duration_ms(reader, "mp3")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * budget, f"peak {peak / 2**20:.1f} MiB for a {budget / 2**20:.0f} MiB budget"


def test_a_read_beyond_the_budget_is_refused_before_allocating():
    reader = RangedReader(crafted_mp3(0, 50 << 20), 50 << 20, max_fetch_bytes=1 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(ReadBudgetExceeded):
            reader.read(40 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    assert reader.bytes_fetched == 0 and isinstance(reader.failure, ReadBudgetExceeded)


def test_reads_within_the_budget_still_work(audio):
    data = audio["note.wav"].data
    reader = reader_over(data, block_bytes=4096, max_fetch_bytes=4 * 4096)
    assert reader.read(10000) == data[:10000]
    reader.seek(100)
    assert reader.read(14000) == data[100:14100]  # three cached blocks and one new one
    assert reader.bytes_fetched == 4 * 4096
    with pytest.raises(ReadBudgetExceeded):
        reader.read(4096)
