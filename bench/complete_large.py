"""What complete costs for a large object: time, and bytes read from the store.

Uploads a 100 MiB WAV (a valid header plus silence; 54 min at 16 kHz mono 16-bit)
through a presigned PUT to moto's threaded server, then times complete over real
HTTP on loopback, counting the ranged GETs verification makes. For scale it also
times a full download of the same object.

    .venv/bin/python bench/complete_large.py [--mib 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import struct
import tempfile
import threading
import time

import requests
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

from advanced_notes import create_app, migrate
from advanced_notes.auth import mint_token
from advanced_notes.storage import S3Storage


def wav(total_bytes: int, rate: int = 16000) -> bytes:
    pcm = total_bytes - 44
    header = b"RIFF" + struct.pack("<I", 36 + pcm) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", pcm)
    return header + bytes(pcm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    reads: list[int] = []
    original = S3Storage.get_range

    def counting(self, key, start, end):  # the real ranged GET, with its size recorded
        data = original(self, key, start, end)
        reads.append(len(data))
        return data

    S3Storage.get_range = counting  # type: ignore[method-assign]

    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3.start()
    host, port = s3.get_host_and_port()
    db_url = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite"
    migrate.upgrade(db_url)
    app = create_app({"APP_ENV": "dev", "DATABASE_URL": db_url, "S3_ENDPOINT_URL": f"http://{host}:{port}",
                      "S3_BUCKET": "bench", "S3_ADDRESSING_STYLE": "path", "AWS_ACCESS_KEY_ID": "bench",
                      "AWS_SECRET_ACCESS_KEY": "bench", "MAX_UPLOAD_BYTES": str(args.mib * 1024**2),
                      "AUTH_JWKS_URL": None, "AUTH_JWT_SECRET": None})
    services = app.extensions["advanced_notes"]
    services.storage.ensure_bucket()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {mint_token(services.settings, 'bench', 3600)}"

    data = wav(args.mib * 1024**2)
    complete_ms, download_ms, read_bytes, read_requests = [], [], [], []
    for _ in range(args.rounds):
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

    print(f"object: {len(data)} bytes ({args.mib} MiB WAV), store: moto threaded server on loopback, "
          f"rounds: {args.rounds}")
    print(f"complete (HEAD + ranged GETs + parse + UPDATE): median {statistics.median(complete_ms):.1f} ms, "
          f"max {max(complete_ms):.1f} ms")
    print(f"read from the store per complete: {max(read_bytes)} bytes in {max(read_requests)} ranged GET(s) "
          f"({100 * max(read_bytes) / len(data):.3f} % of the object)")
    print(f"for scale, a full download of the object: median {statistics.median(download_ms):.1f} ms")
    server.shutdown()
    s3.stop()


if __name__ == "__main__":
    main()
