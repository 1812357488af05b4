"""A real S3-compatible server on 127.0.0.1 for the object-storage tests: moto's
``moto_server`` (PyPI ``moto[server]``, installed by the test extra), a process of
its own on a private port, always stopped.

It speaks the S3 REST API over HTTP, with the semantics the store relies on
(atomic PUT, strong read-after-write, ``If-Match`` / ``If-None-Match`` on PUT).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

#: The credentials the tests give boto3 (moto accepts any); the secret doubles as a marker
#: that must never appear in a log, a file or a message.
ACCESS_KEY = "AKIAEILTESTKEY"
SECRET_KEY = "s3-secret-MARKER-7c1e9a"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class S3Server:
    """A running ``moto_server``."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What a process needs to reach it (boto3's standard variables)."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "EIL_S3_ENDPOINT": self.endpoint,
        }

    def client(self):
        """A boto3 client of the test's own (to look at what the runners wrote)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def bucket(self, name: str) -> str:
        """Make the bucket ``name`` (empty); return its name."""
        client = self.client()
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name)
        keys = [o["Key"] for o in self.objects(name)]
        if keys:
            client.delete_objects(Bucket=name, Delete={"Objects": [{"Key": k} for k in keys]})
        return name

    def objects(self, bucket: str, prefix: str = "") -> list[dict]:
        """Every object under ``prefix``."""
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return [item for page in pages for item in page.get("Contents", ())]

    def stop(self) -> None:
        """Stop it and wait."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _missing(reason: str) -> None:
    """Skip the calling test, or fail it when ``CI`` is set (CI installs every tool)."""
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def start_s3_server(folder: Path) -> S3Server:
    """Start ``moto_server`` on a free port of 127.0.0.1 and wait until it answers."""
    try:
        import boto3  # noqa: F401
    except ImportError:
        _missing("boto3 is missing (pip install -e '.[test]' installs it)")
    program = shutil.which("moto_server")
    if program is None:
        _missing("moto_server is missing (pip install -e '.[test]' installs moto[server])")
    assert program is not None
    log = folder / "moto.log"
    for _ in range(5):
        port = _free_port()
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [program, "-H", "127.0.0.1", "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=folder,
                start_new_session=True,
            )
        server = S3Server(process, port, log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"{server.endpoint}/moto-api/", timeout=5):
                    return server
            except OSError:
                time.sleep(0.1)
        server.stop()  # the port was taken meanwhile, or it did not start: another port
    raise AssertionError(f"moto_server did not start: {log.read_text(errors='replace')[-2000:]}")
