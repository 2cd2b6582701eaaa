"""Read an S3 Inventory report (CSV) as the objects under a prefix, in key order.

Where the provider offers it (AWS S3 Inventory), a daily report of every object replaces
the nightly reconcile's listing: no LIST request per 1000 objects. The report's
``manifest.json`` names its CSV files (gzip) and their columns (``fileSchema``: ``Key``,
``Size``, ``LastModifiedDate`` are needed). Keys in the files are URL-encoded, and the
files are not in key order among themselves, so each is sorted on its own (on disk, one
file in memory at a time) and the sorted files are merged: memory stays that of one file.

The report must be delivered to the app's own bucket (under a prefix outside
``<prefix>/audio-clips/``): the files are fetched with the app's credentials.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import heapq
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote_plus

from advanced_notes.adapters.storage import ListedObject, S3Storage
from advanced_notes.domain.errors import ObjectVanished

_NEEDED = ("Key", "Size", "LastModifiedDate")


class InventoryError(ValueError):
    """The manifest is not a CSV S3 Inventory report of this bucket, or lacks a needed column."""


def parse_manifest(text: str, bucket: str) -> tuple[dt.datetime, list[str], dict[str, int]]:
    """The report's time, its data files' keys and the column index of each needed field.

    Args:
        text: ``manifest.json``'s content; bucket: the app's bucket (the report's
            source and destination).
    Returns:
        ``(taken_at, file_keys, columns)``: ``taken_at`` aware UTC (``creationTimestamp``,
        milliseconds since the epoch), ``columns`` maps ``Key``/``Size``/``LastModifiedDate``
        to positions in a CSV row.
    Raises:
        InventoryError: not JSON, not CSV, another bucket's report, or a needed column missing.
    """
    try:
        manifest = json.loads(text)
        schema = [name.strip() for name in manifest["fileSchema"].split(",")]
        files = [entry["key"] for entry in manifest["files"]]
        taken_at = dt.datetime.fromtimestamp(int(manifest["creationTimestamp"]) / 1000, dt.UTC)
        source, destination, file_format = (
            manifest["sourceBucket"],
            manifest["destinationBucket"],
            manifest["fileFormat"],
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InventoryError(f"not an S3 Inventory manifest: {exc.__class__.__name__}: {exc}") from exc
    if file_format != "CSV":
        raise InventoryError(f"the report's format is {file_format}; only CSV is read")
    if source != bucket:
        raise InventoryError(f"the report is of bucket {source!r}, not {bucket!r}")
    if destination.rsplit(":", 1)[-1] != bucket:
        raise InventoryError(f"the report was delivered to {destination!r}; deliver it to {bucket!r}")
    missing = [name for name in _NEEDED if name not in schema]
    if missing:
        raise InventoryError(f"the report lacks the field(s) {', '.join(missing)}")
    return taken_at, files, {name: schema.index(name) for name in _NEEDED}


def _entries(path: Path, columns: dict[str, int], prefix: str, name: str) -> Iterator[tuple[str, int, str]]:
    number = 0
    try:
        with gzip.open(path, "rt", newline="") as rows:
            for row in csv.reader(rows):
                number += 1
                key = unquote_plus(row[columns["Key"]])
                if key.startswith(prefix):
                    modified = row[columns["LastModifiedDate"]]
                    dt.datetime.fromisoformat(modified)  # refused here, not in the merge
                    yield key, int(row[columns["Size"]] or 0), modified
    except (OSError, EOFError, csv.Error, IndexError, ValueError) as exc:
        where = f"row {number}" if number else "its start"
        raise InventoryError(f"{name}: unreadable at {where}: {exc.__class__.__name__}: {exc}") from exc


def _sorted_file(path: Path, columns: dict[str, int], prefix: str, out: Path, name: str) -> Path:
    entries = sorted(_entries(path, columns, prefix, name))
    with out.open("w", newline="") as sink:
        csv.writer(sink).writerows(entries)
    return out


def _read_sorted(path: Path) -> Iterator[ListedObject]:
    with path.open(newline="") as source:
        for key, size, modified in csv.reader(source):
            yield ListedObject(key, int(size), dt.datetime.fromisoformat(modified))


def inventory_objects(
    storage: S3Storage, manifest_key: str, prefix: str, workdir: Path | None = None
) -> tuple[dt.datetime, Iterator[ListedObject]]:
    """The objects under ``prefix`` as the report at ``manifest_key`` (in the app's bucket) lists them.

    Args:
        storage: the app's store; manifest_key: the key of the report's ``manifest.json``;
        prefix: keep only keys starting with it; workdir: where the files are downloaded
            and sorted (default: a temporary directory removed when the iterator ends).
    Returns:
        ``(taken_at, objects)``: when the report was made (aware UTC) and its objects in
        key order (binary order of the keys, as a listing).
    Raises:
        InventoryError: no manifest at the key, or an unusable one (read at once, before any
            file); or, while iterating, a data file that is not gzip CSV of the schema.
        StorageUnavailable: the manifest or a file could not be fetched; ObjectVanished: a
            data file the manifest names is gone.
    """
    scratch = tempfile.TemporaryDirectory(prefix="inventory-") if workdir is None else None
    folder = Path(scratch.name) if scratch is not None else workdir
    assert folder is not None
    try:
        storage.download_file(manifest_key, folder / "manifest.json")
    except ObjectVanished as exc:
        raise InventoryError(f"no object at {manifest_key!r} in bucket {storage.bucket!r}") from exc
    taken_at, files, columns = parse_manifest((folder / "manifest.json").read_text(), storage.bucket)

    def objects() -> Iterator[ListedObject]:
        try:
            sorted_files = []
            for number, key in enumerate(files):
                raw = folder / f"{number}.csv.gz"
                storage.download_file(key, raw)
                sorted_files.append(_sorted_file(raw, columns, prefix, folder / f"{number}.sorted.csv", key))
                raw.unlink()
            # Keys compare as str here; S3's order is that of their UTF-8 bytes, the same
            # for the ASCII keys the app writes (<prefix>/audio-clips/<uuid>.<ext>).
            yield from heapq.merge(*(_read_sorted(p) for p in sorted_files), key=lambda o: o.key)
        finally:
            if scratch is not None:
                scratch.cleanup()

    return taken_at, objects()
