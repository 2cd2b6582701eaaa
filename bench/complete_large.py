"""What complete costs for a large object: time, and bytes read from the store.

Uploads a 100 MiB WAV (a valid header plus silence; 54 min at 16 kHz mono 16-bit)
through a presigned PUT to moto's threaded server, then times complete over real
HTTP on loopback, counting the ranged GETs verification makes. For scale it also
times a full download of the same object.

    .venv/bin/python -m bench.complete_large [--mib 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import requests

from advanced_notes.adapters.storage import S3Storage
from testkit.longaudio import silent_wav as wav
from testkit.loopback import Loopback, serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    reads: list[int] = []
    original = S3Storage.get_range

    def counting(self, key, start, end):  # the real ranged GET, with its size recorded
        data = original(self, key, start, end)
        reads.append(len(data))
        return data

    S3Storage.get_range = counting  # type: ignore[method-assign]

    with serving(MAX_UPLOAD_BYTES=str(args.mib * 1024**2)) as service:
        run(service, wav(args.mib * 1024**2), args.mib, args.rounds, reads)


def run(service: Loopback, data: bytes, mib: int, rounds: int, reads: list[int]) -> None:
    """Upload ``data`` ``rounds`` times; time complete, count what it read; print the figures."""
    base = service.base_url
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {service.token}"
    complete_ms, download_ms, read_bytes, read_requests = [], [], [], []
    for _ in range(rounds):
        created = api.post(f"{base}/api/audio-clips", json={"mime_type": "audio/wav", "bytes": len(data)}).json()
        requests.put(created["upload"]["url"], data=data, headers=created["upload"]["headers"]).raise_for_status()
        reads.clear()
        t0 = time.perf_counter()
        done = api.post(f"{base}/api/audio-clips/{created['clip']['id']}/complete")
        complete_ms.append((time.perf_counter() - t0) * 1000)
        done.raise_for_status()
        assert done.json()["clip"]["status"] == "ready", done.text
        read_bytes.append(sum(reads))
        read_requests.append(len(reads))
        url = api.get(f"{base}/api/audio-clips/{created['clip']['id']}/playback").json()["url"]
        t0 = time.perf_counter()
        assert len(requests.get(url).content) == len(data)
        download_ms.append((time.perf_counter() - t0) * 1000)

    print(f"object: {len(data)} bytes ({mib} MiB WAV), store: moto threaded server on loopback, rounds: {rounds}")
    print(
        f"complete (HEAD + ranged GETs + parse + UPDATE): median {statistics.median(complete_ms):.1f} ms, "
        f"max {max(complete_ms):.1f} ms"
    )
    print(
        f"read from the store per complete: {max(read_bytes)} bytes in {max(read_requests)} ranged GET(s) "
        f"({100 * max(read_bytes) / len(data):.3f} % of the object)"
    )
    print(f"for scale, a full download of the object: median {statistics.median(download_ms):.1f} ms")


if __name__ == "__main__":
    main()
