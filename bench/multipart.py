"""Time to upload and complete a 100 MB clip in parts on loopback: 1 vs 4 parts in parallel.

The app on loopback over moto's threaded server (default) or any S3 store given with
``--endpoint`` (e.g. Ceph radosgw from ../shared/tools/rgw, which enforces signatures and
part rules). The clip is a real WAV: the speech of ../shared/fixtures/audio/note.wav
repeated to the asked size. Each round: create (multipart), sign and PUT every part with
the SDK's uploader (``AudioClipsClient.put_parts``, ``--parallel`` at a time), complete
(ListParts + CompleteMultipartUpload + verification). Prints the medians.

    .venv/bin/python -m bench.multipart [--mb 100] [--rounds 3] [--part-mib 8]
    .venv/bin/python -m bench.multipart --endpoint http://127.0.0.1:7480 \\
        --access-key RGWTESTACCESSKEY0001 --secret-key rgwTestSecretKey0000000000000000000000001
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
import wave

from advanced_notes.client import AudioClipsClient
from testkit.loopback import serving
from testkit.paths import FIXTURES as AUDIO_FIXTURES

FIXTURE = AUDIO_FIXTURES


def long_wav(min_bytes: int) -> bytes:
    """The fixture's speech repeated into a valid WAV of at least ``min_bytes`` bytes."""
    with wave.open(str(FIXTURE / "note.wav"), "rb") as src:
        params, frames = src.getparams(), src.readframes(src.getnframes())
    out = io.BytesIO()
    with wave.open(out, "wb") as dst:
        dst.setparams(params)
        dst.writeframes(frames * -(-min_bytes // len(frames)))
    return out.getvalue()


def one_round(client: AudioClipsClient, path: str, size: int, parallel: int) -> tuple[float, float, float]:
    """Seconds for (create, parts, complete) of one upload."""
    t0 = time.perf_counter()
    created = client.create(mime_type="audio/wav", bytes=size, multipart=True)
    t1 = time.perf_counter()
    session = created["multipart"]
    numbers = list(range(1, session["part_count"] + 1))
    client.put_parts(created["clip"]["id"], session, path, numbers, parallel=parallel)
    t2 = time.perf_counter()
    clip = client.complete(created["clip"]["id"])["clip"]
    t3 = time.perf_counter()
    assert clip["status"] == "ready" and clip["stored_bytes"] == size, clip
    return t1 - t0, t2 - t1, t3 - t2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="clip size, 10^6 bytes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--part-mib", type=int, default=8, help="MULTIPART_PART_SIZE_BYTES in MiB")
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--endpoint", help="an S3 endpoint instead of moto (path style)")
    parser.add_argument("--access-key")
    parser.add_argument("--secret-key")
    args = parser.parse_args()

    data = long_wav(args.mb * 10**6)
    settings = {
        "MULTIPART_PART_SIZE_BYTES": str(args.part_mib * 1024**2),
        "MAX_UPLOAD_BYTES": str(len(data)),
        "MAX_DURATION_MS": str(10 * 3600 * 1000),
    }
    if args.endpoint:
        settings.update(
            S3_ENDPOINT_URL=args.endpoint,
            AWS_ACCESS_KEY_ID=args.access_key,
            AWS_SECRET_ACCESS_KEY=args.secret_key,
            S3_BUCKET="bench-multipart",
        )
    with tempfile.NamedTemporaryFile(suffix=".wav") as f, serving(**settings) as service:
        f.write(data)
        f.flush()
        client = AudioClipsClient(service.base_url, service.token, timeout=300)
        store = args.endpoint or "moto threaded server"
        parts = -(-len(data) // (args.part_mib * 1024**2))
        print(f"clip: {len(data)} bytes WAV, {parts} parts of {args.part_mib} MiB; store: {store} on loopback")
        for parallel in args.parallel:
            rounds = [one_round(client, f.name, len(data), parallel) for _ in range(args.rounds)]
            create, put, complete = (statistics.median(r[i] for r in rounds) for i in range(3))
            total = statistics.median(sum(r) for r in rounds)
            print(
                f"parallel {parallel}: upload+complete median {total:.2f} s "
                f"({len(data) / total / 1e6:.0f} MB/s; create {create * 1000:.0f} ms, parts {put:.2f} s, "
                f"complete {complete * 1000:.0f} ms), rounds {args.rounds}"
            )


if __name__ == "__main__":
    main()
