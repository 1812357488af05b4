"""Publishing a report to an object store: boto3 (what ``[storage] reports = "s3://…"``
uses) against writing the same files to a local folder, and against s3fs (fsspec)
when it is installed, in one run.

A report here is what a typical run publishes: Markdown, HTML, the manifest and
three chart PNGs (about 230 KB).  The server is moto's S3 server on 127.0.0.1
(started here from ``moto_server``, or ``--endpoint URL``), so the figures are
the client's cost plus a local round trip, not a WAN's.

    python benchmarks/bench_object_store.py [--reports 40] [--endpoint URL]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

BUCKET = "eil-bench"


def report(n: int) -> dict[str, bytes]:
    stamp = f"2026-03-{1 + n // 24:02d}T{n % 24:02d}00"
    blob = os.urandom(60_000)
    return {
        f"{stamp}_charts/a.png": blob,
        f"{stamp}_charts/b.png": blob[::-1],
        f"{stamp}_charts/c.png": blob[1:] + b"x",
        f"{stamp}.md": b"# Report\n" + b"x" * 4_000,
        f"{stamp}.html": b"<p>" + b"y" * 40_000 + b"</p>",
        f"{stamp}.json": b'{"manifest_version": 1}' + b" " * 6_000,
    }


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    program = shutil.which("moto_server")
    if program is None:
        raise SystemExit("moto_server is not installed: pip install 'moto[server]', or --endpoint")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [program, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=5).close()
            return process, endpoint
        except OSError:
            time.sleep(0.1)
    raise SystemExit("moto_server did not start")


def time_each(count: int, publish) -> list[float]:
    times = []
    for n in range(count):
        files = report(n)
        t = time.perf_counter()
        publish(n, files)
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=40)
    parser.add_argument("--endpoint")
    options = parser.parse_args()
    process = None
    endpoint = options.endpoint
    if endpoint is None:
        process, endpoint = start_moto()
    try:
        results: dict[str, list[float]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            from eil_pipelines.outputs.atomic import atomic_write_bytes

            def local(n: int, files: dict[str, bytes]) -> None:
                for name, data in files.items():
                    atomic_write_bytes(Path(tmp) / "sales" / name, data)

            results["local folder (write, fsync, rename)"] = time_each(options.reports, local)

        import boto3

        client = boto3.client("s3", endpoint_url=endpoint)
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=BUCKET)
        try:
            from eil_pipelines.outputs.store import ObjectStore

            store = ObjectStore(f"s3://{BUCKET}/eil", endpoint_url=endpoint)

            def eil(n: int, files: dict[str, bytes]) -> None:
                stamp = next(name.removesuffix(".md") for name in files if name.endswith(".md"))
                store.publish("sales", stamp, files, run={})

            results["eil ObjectStore.publish (boto3 + pointer)"] = time_each(options.reports, eil)
        except ImportError:
            pass

        def raw_boto3(n: int, files: dict[str, bytes]) -> None:
            for name, data in files.items():
                client.put_object(Bucket=BUCKET, Key=f"boto3/sales/{name}", Body=data)

        results["boto3 put_object"] = time_each(options.reports, raw_boto3)
        try:
            import s3fs

            fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})

            def with_s3fs(n: int, files: dict[str, bytes]) -> None:
                fs.pipe({f"{BUCKET}/s3fs/sales/{name}": data for name, data in files.items()})

            results[f"s3fs {s3fs.__version__} pipe"] = time_each(options.reports, with_s3fs)
        except ImportError:
            print("(s3fs is not installed: its line is left out)")
    finally:
        if process is not None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait()
    import botocore

    print(f"boto3 {boto3.__version__}, botocore {botocore.__version__}")
    base = statistics.median(results["boto3 put_object"])
    print(f"{'one report of 6 files, 230 KB':45} {'median ms':>10} {'p95 ms':>8} {'vs boto3':>9}")
    for name, times in results.items():
        times.sort()
        median = statistics.median(times)
        p95 = times[int(len(times) * 0.95) - 1]
        print(f"{name:45} {median * 1000:10.1f} {p95 * 1000:8.1f} {median / base:8.2f}x")


if __name__ == "__main__":
    main()
