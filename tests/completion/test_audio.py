"""Content sniffing, duration measurement and the ranged reader, on the real fixtures."""

from __future__ import annotations

import io
import struct

import pytest

from advanced_notes.domain.audio import (
    UnreadableAudio,
    container_fits,
    measure_duration_ms,
    sniff_container,
)
from advanced_notes.domain.mime import AUDIO_TYPES, CONTAINERS, container_for_extension
from advanced_notes.domain.rangeio import RangedReader, ReadBudgetExceeded
from testkit.paths import AUDIO_FILES

EXPECTED_CONTAINER = {
    "note.m4a": "mp4",
    "note.mp3": "mp3",
    "note.wav": "wav",
    "note.ogg": "ogg",
    "note.webm": "webm",
    "note.flac": "flac",
}


def reader_over(data: bytes, **kw) -> RangedReader:
    return RangedReader(lambda start, end: data[start : end + 1], len(data), **kw)


@pytest.mark.parametrize("name", AUDIO_FILES)
def test_real_files_are_sniffed_and_measured_within_100_ms(audio, name):
    f = audio[name]
    reader = reader_over(f.data, block_bytes=8192)
    container = sniff_container(reader.read(65536))
    assert container == EXPECTED_CONTAINER[name]
    assert container_fits(f.mime_type, container)
    assert abs(measure_duration_ms(reader, container) - f.duration_ms) <= 100


@pytest.mark.parametrize("name", ["impostor-html.m4a", "not-audio.html"])
def test_html_is_not_audio(audio, name):
    assert sniff_container(audio[name].data) is None


@pytest.mark.parametrize(
    "data", [b"", b"\x00" * 1000, b"hello world", b"%PDF-1.7\n...", b"\x89PNG\r\n\x1a\n" + b"\0" * 64]
)
def test_other_bytes_are_not_audio(data):
    assert sniff_container(data) is None


def test_truncated_m4a_is_unreadable(audio):
    data = audio["truncated.m4a"].data
    assert sniff_container(data) == "mp4"  # its signature is fine: only parsing finds the damage
    with pytest.raises(UnreadableAudio):
        measure_duration_ms(reader_over(data), "mp4")


@pytest.mark.parametrize("name, cut", [("note.flac", 60), ("note.wav", 30), ("note.ogg", 200), ("note.webm", 100)])
def test_damaged_headers_are_unreadable(audio, name, cut):
    with pytest.raises(UnreadableAudio):
        measure_duration_ms(io.BytesIO(audio[name].data[:cut]), EXPECTED_CONTAINER[name])


def test_mp3_without_id3_is_found_by_frame_sync(audio):
    data = audio["note.mp3"].data
    id3_size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
    bare = data[10 + id3_size :]
    assert bare[:2] == b"\xff\xfb"
    assert sniff_container(bare) == "mp3"


def test_declared_types_fit_only_their_containers():
    assert container_fits("audio/opus", "webm") and container_fits("audio/opus", "ogg")
    assert container_fits("audio/x-m4a", "mp4") and container_fits("audio/aac", "mp4")
    assert not container_fits("audio/mpeg", "mp4") and not container_fits("audio/mp4", "webm")
    assert not container_fits("text/html", "mp4")


def test_the_table_names_only_containers_the_sniffing_knows():
    assert all(set(t.containers) <= set(CONTAINERS) and t.containers for t in AUDIO_TYPES)
    declared = {name for t in AUDIO_TYPES for name in (t.mime_type, *t.aliases)}
    assert {c.mime_type for c in CONTAINERS.values()} <= declared
    assert container_for_extension(".M4A") == "mp4" and container_for_extension(".mka") == "webm"
    assert container_for_extension("") is None and container_for_extension(".html") is None


def test_storage_errors_are_not_bad_audio(audio):
    data = audio["note.m4a"].data

    class StoreDown(Exception):
        pass

    def fetch(start, end):
        if start > 0:
            raise StoreDown
        return data[start : end + 1]

    with pytest.raises(StoreDown):
        measure_duration_ms(RangedReader(fetch, len(data), block_bytes=1024), "mp4")


# -- the ranged reader ----------------------------------------------------------------


def test_reader_behaves_like_a_file():
    data = bytes(range(256)) * 1000
    reader = reader_over(data, block_bytes=1000)
    assert reader.read(10) == data[:10]
    assert reader.seek(-5, io.SEEK_END) == len(data) - 5 and reader.read() == data[-5:]
    assert reader.read(3) == b""
    reader.seek(2995)
    assert reader.read(10) == data[2995:3005]  # across a block boundary
    reader.seek(10, io.SEEK_SET)
    reader.seek(5, io.SEEK_CUR)
    assert reader.tell() == 15 and reader.read(1) == data[15:16]
    with pytest.raises(ValueError):
        reader.seek(-1)


def test_reader_fetches_only_what_is_read_and_caches_blocks():
    data = b"x" * 10_000_000
    reader = reader_over(data, block_bytes=65536)
    reader.read(100)
    reader.seek(-100, io.SEEK_END)
    reader.read(100)
    reader.seek(50)
    reader.read(10)
    assert reader.requests == 2
    assert reader.bytes_fetched == 65536 + (len(data) % 65536 or 65536)


def test_reader_budget():
    reader = reader_over(b"y" * 1_000_000, block_bytes=65536, max_fetch_bytes=131072)
    reader.read(131072)
    with pytest.raises(ReadBudgetExceeded):
        reader.read(1)


def _wav(seconds: int, rate: int = 8000) -> bytes:
    data_bytes = seconds * rate * 2
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )
    return header + bytes(data_bytes)


def test_a_long_file_is_measured_from_its_header_only():
    data = _wav(600)  # 9.6 MB
    reader = reader_over(data)
    assert sniff_container(reader.read(65536)) == "wav"
    assert measure_duration_ms(reader, "wav") == 600_000
    assert reader.bytes_fetched <= 2 * 65536


def test_m4a_duration_is_the_edit_lists_not_the_priming_samples(audio):
    """note.m4a: mdhd counts 278344 samples at 44.1 kHz (6312 ms), 1024 of them AAC
    priming that the edit list skips; elst plays 6288 ms (mvhd and ffprobe: 6289)."""
    from mutagen.mp4 import MP4

    f = audio["note.m4a"]
    assert round(MP4(f.path).info.length * 1000) == 6312  # the media's length, priming included
    with f.path.open("rb") as fileobj:
        assert abs(measure_duration_ms(fileobj, "mp4") - f.duration_ms) <= 1
    reader = reader_over(f.data, block_bytes=4096)
    assert abs(measure_duration_ms(reader, "mp4") - f.duration_ms) <= 1


def test_enzyme_reads_its_matroska_spec_once_per_process(audio):
    # Each WebM verification used to parse enzyme's spec XML again (CPU and a heap
    # high-water mark in every web worker); two verifications share one spec now.
    from enzyme.parsers import ebml

    data = audio["note.webm"].data
    specs = []
    for _ in range(2):
        assert measure_duration_ms(io.BytesIO(data), "webm") == audio["note.webm"].duration_ms
        specs.append(ebml.get_matroska_specs())
    assert specs[0] is specs[1] and len(specs[0]) > 100
