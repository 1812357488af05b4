"""Object storage (``[storage] reports = "s3://bucket/prefix"``) against a real
S3-compatible server on 127.0.0.1 (moto_server): publishing, the ``latest``
pointer, retention, the mirror ``serve`` and ``send`` read through, and the
errors a user sees."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from multi_helpers import wait_for
from s3_server import SECRET_KEY

from eil_pipelines.cli import main
from eil_pipelines.errors import ConfigError
from eil_pipelines.outputs.store import (
    ObjectStore,
    StoreError,
    mirror,
    parse_store_url,
    report_key_parts,
)
from eil_pipelines.spec.project import load_project_settings, load_storage_settings

pytestmark = [pytest.mark.external, pytest.mark.slow]


def _store(s3, bucket: str, prefix: str = "team/reports") -> ObjectStore:
    s3.bucket(bucket)
    return ObjectStore(f"s3://{bucket}/{prefix}", endpoint_url=s3.endpoint)


def _report(stamp: str, text: str = "hello") -> dict[str, bytes]:
    return {
        f"{stamp}_charts/revenue.png": b"\x89PNG fake " + stamp.encode(),
        f"{stamp}.md": f"# {text}\n".encode(),
        f"{stamp}.html": f"<p>{text}</p>".encode(),
        f"{stamp}.json": json.dumps({"manifest_version": 1, "stamp": stamp}).encode(),
    }


def test_publish_writes_every_object_and_the_pointer_moves_only_forward(s3):
    store = _store(s3, "eil-publish")
    assert store.publish("sales", "2026-03-02", _report("2026-03-02"), run={"attempt": 1})
    keys = sorted(o["Key"] for o in s3.objects("eil-publish"))
    assert keys == [
        "team/reports/sales/2026-03-02.html",
        "team/reports/sales/2026-03-02.json",
        "team/reports/sales/2026-03-02.md",
        "team/reports/sales/2026-03-02_charts/revenue.png",
        "team/reports/sales/latest.json",
    ]
    assert store.get("sales/2026-03-02.md")[0] == b"# hello\n"
    pointer = store.latest("sales")
    assert pointer["stamp"] == "2026-03-02"
    assert pointer["documents"] == {"html": "2026-03-02.html", "md": "2026-03-02.md"}
    assert pointer["attempt"] == 1

    assert store.publish("sales", "2026-03-03", _report("2026-03-03", "newer"), run={})
    # A backfilled older report is published, but does not move the pointer back.
    assert not store.publish("sales", "2026-03-01", _report("2026-03-01", "older"), run={})
    assert store.latest("sales")["stamp"] == "2026-03-03"
    assert store.get("sales/2026-03-01.md")[0] == b"# older\n"
    # A re-run of the newest stamp replaces it, and keeps the pointer on it.
    assert store.publish("sales", "2026-03-03", _report("2026-03-03", "again"), run={})
    assert store.get("sales/2026-03-03.md")[0] == b"# again\n"
    assert store.latest("sales")["stamp"] == "2026-03-03"


def test_publishers_racing_for_the_pointer_leave_it_on_the_newest(s3):
    store = _store(s3, "eil-race")
    stamps = [f"2026-03-{day:02d}" for day in range(1, 17)]
    barrier = threading.Barrier(len(stamps))
    errors: list[BaseException] = []

    def publish(stamp: str) -> None:
        mine = ObjectStore(store.url, endpoint_url=s3.endpoint)  # one client each, as runners
        barrier.wait()
        try:
            mine.publish("race", stamp, _report(stamp), run={})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(s,)) for s in reversed(stamps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.latest("race")["stamp"] == stamps[-1]


def test_retention_deletes_the_oldest_reports_objects(s3):
    store = _store(s3, "eil-keep", prefix="")
    for day in range(1, 6):
        store.publish("ops", f"2026-03-0{day}", _report(f"2026-03-0{day}"), run={})
    gone = store.apply_retention("ops", 2, protect="2026-03-01")
    assert gone == ["2026-03-03", "2026-03-02"]
    assert sorted(store.report_names("ops")) == ["2026-03-01", "2026-03-04", "2026-03-05"]
    assert not [o for o in s3.objects("eil-keep") if "2026-03-02" in o["Key"]]


def test_the_mirror_fetches_changes_deletes_what_went_and_follows_the_pointer(s3, tmp_path):
    store = _store(s3, "eil-mirror")
    reports = tmp_path / "reports"
    store.publish("sales", "2026-03-01", _report("2026-03-01", "one"), run={})
    store.publish("sales", "2026-03-02", _report("2026-03-02", "two"), run={})
    # Keys that are not report files are never written into the folder.
    client = s3.client()
    for key in ("sales/notes.txt", "sales/../../escape.md", "Bad Name/2026-03-01.md"):
        client.put_object(Bucket="eil-mirror", Key=f"team/reports/{key}", Body=b"x")

    touched = mirror(store, reports)
    assert touched == {"sales": {"2026-03-01", "2026-03-02"}}
    assert (reports / "sales" / "latest.md").read_text() == "# two\n"
    assert (reports / "sales" / "2026-03-01_charts" / "revenue.png").is_file()
    assert not (reports / "sales" / "notes.txt").exists()
    assert not (tmp_path / "escape.md").exists()
    assert not list(tmp_path.rglob("escape.md"))
    assert mirror(store, reports) == {}  # nothing changed: nothing fetched

    store.publish("sales", "2026-03-03", _report("2026-03-03", "three"), run={})
    store.apply_retention("sales", 2)
    touched = mirror(store, reports)
    assert touched == {"sales": {"2026-03-01", "2026-03-03"}}
    assert not (reports / "sales" / "2026-03-01.md").exists()
    assert not (reports / "sales" / "2026-03-01_charts").exists()
    assert (reports / "sales" / "latest.html").read_text() == "<p>three</p>"
    # A file the mirror did not fetch is never deleted.
    (reports / "sales" / "README.txt").write_text("mine")
    mirror(store, reports)
    assert (reports / "sales" / "README.txt").exists()


def test_report_keys_the_mirror_accepts():
    assert report_key_parts("sales/2026-03-01.md") == ("sales", "2026-03-01")
    assert report_key_parts("sales/2026-03-01T0700_data/orders.csv") == ("sales", "2026-03-01T0700")
    assert report_key_parts("sales/2026-03-01_charts/../x.png") is None
    assert report_key_parts("sales/latest.md") is None
    assert report_key_parts("sales/2026-03-01_data/x.sh") is None


def test_store_errors_name_the_store_and_never_the_secret(s3):
    missing = ObjectStore("s3://no-such-bucket/r", endpoint_url=s3.endpoint)
    with pytest.raises(StoreError) as caught:
        missing.put("sales/2026-03-01.md", b"x")
    text = str(caught.value)
    assert text.startswith("cannot write sales/2026-03-01.md in s3://no-such-bucket/r: ")
    assert "NoSuchBucket" in text
    assert SECRET_KEY not in text

    closed = ObjectStore("s3://eil-closed/r", endpoint_url="http://127.0.0.1:9")
    with pytest.raises(StoreError) as caught:
        list(closed.listing())
    assert str(caught.value).startswith("cannot list the reports in s3://eil-closed/r: ")
    assert SECRET_KEY not in str(caught.value)


def test_no_credentials_is_said_in_words(s3, monkeypatch, tmp_path):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = ObjectStore("s3://eil-nocreds/r", endpoint_url=s3.endpoint)
    with pytest.raises(StoreError) as caught:
        store.get("sales/latest.json")
    assert str(caught.value) == (
        "cannot read sales/latest.json in s3://eil-nocreds/r: no credentials; set "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile, or an instance role)"
    )


@pytest.mark.parametrize(
    ("storage", "key", "expected"),
    [
        ('reports = "ftp://host/x"', "storage.reports", "expected a folder or an s3://bucket/"),
        ('reports = "s3://A/x"', "storage.reports", "bucket name is 3 to 63 lower-case"),
        ('reports = "s3://bucket//x"', "storage.reports", "plain names separated by single"),
        ('reports = ""', "storage.reports", "expected a folder or an s3://bucket/prefix URL"),
        ('endpoint_url = "127.0.0.1:9000"', "storage.endpoint_url", "expected an http://"),
        ("reports = 3", "storage.reports", "expected a string"),
        ('bucket = "x"', "storage.bucket", "unknown key"),
    ],
)
def test_bad_storage_settings_name_the_key_and_what_was_expected(tmp_path, storage, key, expected):
    (tmp_path / "eil.toml").write_text(f"[storage]\n{storage}\n")
    for load in (load_storage_settings, load_project_settings):
        with pytest.raises(ConfigError) as caught:
            load(tmp_path, env={})
        text = str(caught.value)
        assert "eil.toml" in text
        assert key in text
        assert expected in text, text


def test_parse_store_url():
    assert parse_store_url("s3://eil-reports").prefix == ""
    assert parse_store_url("s3://eil-reports/a/b/").prefix == "a/b"
    assert parse_store_url("s3://eil-reports/a/b").url == "s3://eil-reports/a/b"


def _project(tmp_path: Path, s3, bucket: str, *, keep: int | None = None) -> Path:
    s3.bucket(bucket)
    root = tmp_path / "project"
    (root / "pipelines").mkdir(parents=True)
    (root / "eil.toml").write_text(
        f'[storage]\nreports = "s3://{bucket}/prod"\nendpoint_url = "${{EIL_S3_ENDPOINT}}"\n'
    )
    retention = f"[report]\nkeep = {keep}\n" if keep else ""
    (root / "pipelines" / "sales.toml").write_text(
        'title = "Sales"\n'
        '[schedule]\nevery = "1d"\ntimezone = "UTC"\n'
        '[queries.q]\nsql = "SELECT 42 AS revenue"\n'
        '[[metrics]]\nlabel = "Revenue"\nquery = "q"\ncolumn = "revenue"\n' + retention
    )
    return root


def test_a_ledgered_run_publishes_to_the_store_and_a_dry_run_does_not(s3, tmp_path, capsys):
    root = _project(tmp_path, s3, "eil-once", keep=2)
    pipelines = str(root / "pipelines")
    assert main(["--once", pipelines, "--at", "2026-03-01T09:00"]) == 0
    assert s3.objects("eil-once") == []  # the dry run writes the local folder only
    for day in ("01", "02", "03"):
        assert main(["--once", "--deliver", pipelines, "--at", f"2026-03-{day}T09:00"]) == 0
    keys = sorted(o["Key"] for o in s3.objects("eil-once"))
    assert keys == [
        "prod/sales/2026-03-02.html",
        "prod/sales/2026-03-02.json",
        "prod/sales/2026-03-02.md",
        "prod/sales/2026-03-03.html",
        "prod/sales/2026-03-03.json",
        "prod/sales/2026-03-03.md",
        "prod/sales/latest.json",
    ]
    store = ObjectStore("s3://eil-once/prod", endpoint_url=s3.endpoint)
    assert store.latest("sales")["stamp"] == "2026-03-03"
    local = (root / "reports" / "sales" / "2026-03-03.md").read_bytes()
    assert store.get("sales/2026-03-03.md")[0] == local
    for item in s3.objects("eil-once"):
        body = s3.client().get_object(Bucket="eil-once", Key=item["Key"])["Body"].read()
        assert SECRET_KEY.encode() not in body
    assert SECRET_KEY not in capsys.readouterr().out


def test_a_store_that_refuses_fails_the_run_with_the_reason(s3, tmp_path, capsys):
    root = _project(tmp_path, s3, "eil-refuse")
    (root / "eil.toml").write_text(
        '[storage]\nreports = "s3://eil-never-made/prod"\nendpoint_url = "${EIL_S3_ENDPOINT}"\n'
    )
    code = main(["--once", "--deliver", str(root / "pipelines"), "--at", "2026-03-01T09:00"])
    out = capsys.readouterr()
    assert code == 3, out
    text = out.out + out.err
    assert "cannot write sales/2026-03-01.html in s3://eil-never-made/prod" in text
    assert "NoSuchBucket" in text
    assert "Traceback" not in text
    assert SECRET_KEY not in text


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_serve_reads_the_reports_from_the_store_and_sees_new_ones(s3, tmp_path):
    root = _project(tmp_path, s3, "eil-serve")
    pipelines = str(root / "pipelines")
    for day in ("01", "02"):
        assert main(["--once", "--deliver", pipelines, "--at", f"2026-03-{day}T09:00"]) == 0
    store = ObjectStore("s3://eil-serve/prod", endpoint_url=s3.endpoint)
    # The serving machine has none of the runner's files: everything comes from the store.
    served = tmp_path / "served"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "eil_pipelines", "serve", pipelines),
            *("--reports", str(served), "--port", "0", "--no-status"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first = process.stdout.readline()
        match = re.search(r"at http://([\d.]+):(\d+)/ ", first)
        assert match, (first, process.stderr.read() if process.poll() is not None else "")
        base = f"http://{match.group(1)}:{match.group(2)}"
        assert first.startswith("Serving s3://eil-serve/prod at http://127.0.0.1:"), first
        status, body = _get(f"{base}/sales/latest.html")
        assert status == 200
        assert body == store.get("sales/2026-03-02.html")[0]
        status, index = _get(f"{base}/")
        assert status == 200 and b"Sales" in index and b"sales/2026-03-02.html" in index
        assert _get(f"{base}/sales/2026-03-01.md")[0] == 200

        # A report a runner publishes later reaches the site (the mirror looks every 5 s).
        assert main(["--once", "--deliver", pipelines, "--at", "2026-03-03T09:00"]) == 0
        wait_for(
            lambda: _get(f"{base}/sales/latest.md")[1] == store.get("sales/2026-03-03.md")[0],
            "the new report on the site",
        )
        assert b"sales/2026-03-03.html" in _get(f"{base}/")[1]
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert SECRET_KEY not in out + err


def test_serve_says_when_the_store_cannot_be_read(s3, tmp_path):
    root = _project(tmp_path, s3, "eil-serve-bad")
    (root / "eil.toml").write_text(
        '[storage]\nreports = "s3://eil-no-bucket/prod"\nendpoint_url = "${EIL_S3_ENDPOINT}"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "eil_pipelines", "serve", str(root / "pipelines"), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("eil-run: cannot list the reports in s3://eil-no-bucket/prod")
    assert "NoSuchBucket" in result.stderr
    assert "Traceback" not in result.stderr
    assert SECRET_KEY not in result.stderr


def test_send_mails_the_report_the_store_points_to(s3, tmp_path, capsys):
    from delivery_helpers import SmtpServer, eil_toml

    smtp = SmtpServer().start()
    try:
        root = _project(tmp_path, s3, "eil-send")
        storage = (root / "eil.toml").read_text()
        (root / "eil.toml").write_text(storage + eil_toml(smtp.port))
        pipelines = root / "pipelines"
        for day in ("03", "02"):  # the older one last: the pointer stays on the newer
            assert (
                main(["--once", "--deliver", str(pipelines), "--at", f"2026-03-{day}T09:00"]) == 0
            )
        other = tmp_path / "other-machine"  # no local copy: send reads the store
        file = str(pipelines / "sales.toml")
        capsys.readouterr()
        assert main(["send", file, "--to", "cfo@example.com", "--reports", str(other)]) == 0
        assert capsys.readouterr().out.startswith("sent ")
        assert len(smtp.mails) == 1
        assert smtp.mails[0].subject == "Sales – 2026-03-03"
        assert (other / "sales" / "2026-03-03.html").is_file()
    finally:
        smtp.stop()


def test_send_says_when_the_store_has_no_report(s3, tmp_path, capsys):
    from delivery_helpers import SmtpServer, eil_toml

    root = _project(tmp_path, s3, "eil-send-none")
    storage = (root / "eil.toml").read_text()
    (root / "eil.toml").write_text(storage + eil_toml(SmtpServer().port))
    file = str(root / "pipelines" / "sales.toml")
    assert main(["send", file, "--to", "cfo@example.com"]) == 2
    assert capsys.readouterr().err.startswith(
        'eil-run: no report of pipeline "sales" in s3://eil-send-none/prod: run it first'
    )


def test_storage_reports_folder_is_the_default_reports_folder(tmp_path):
    root = tmp_path / "project"
    (root / "pipelines").mkdir(parents=True)
    (root / "eil.toml").write_text('[storage]\nreports = "shared/reports"\n')
    (root / "pipelines" / "sales.toml").write_text(
        'title = "Sales"\n[schedule]\nevery = "1d"\n[queries.q]\nsql = "SELECT 1 AS x"\n'
    )
    assert main(["--once", str(root / "pipelines"), "--at", "2026-03-01T09:00"]) == 0
    assert (root / "shared" / "reports" / "sales" / "2026-03-01.md").is_file()
    assert not (root / "reports").exists()


CHART = (
    '[queries.t]\nsql = "SELECT * FROM (VALUES (1, 10), (2, 20), (3, 15)) AS v(x, y)"\n'
    '[[charts]]\nname = "trend"\nquery = "t"\ntype = "line"\nx = "x"\ny = "y"\n'
)


def test_three_runners_publish_every_report_once_to_the_store(cluster, s3):
    from multi_helpers import pipeline_text, run_three_until_each_ran

    bucket = s3.bucket("eil-three")
    with open(cluster.root / "eil.toml", "a") as toml:
        toml.write(
            f'[storage]\nreports = "s3://{bucket}/shared"\nendpoint_url = "${{EIL_S3_ENDPOINT}}"\n'
        )
    every_of = {f"p{n:02d}": (2, 3, 4, 5)[n % 4] for n in range(30)}
    for n, (name, every) in enumerate(every_of.items()):
        cluster.pipeline(name, pipeline_text(f"{every}s") + (CHART if n % 5 == 0 else ""))
    runners = run_three_until_each_ran(cluster, 30, timeout=300, **s3.env())
    rows = cluster.rows()
    keys = Counter((r.pipeline, r.scheduled_at) for r in rows)
    assert [k for k, n in keys.items() if n > 1] == []
    objects = [o["Key"].removeprefix("shared/") for o in s3.objects(bucket, "shared/")]
    store = ObjectStore(f"s3://{bucket}/shared", endpoint_url=s3.endpoint)
    for name, every in every_of.items():
        mine = sorted((r for r in rows if r.pipeline == name), key=lambda r: r.scheduled_at)
        times = [r.scheduled_at for r in mine]
        assert {b - a for a, b in itertools.pairwise(times)} <= {timedelta(seconds=every)}
        assert {r.status for r in mine} <= {"succeeded", "skipped"}, [r.error for r in mine]
        succeeded = [r for r in mine if r.status == "succeeded"]
        # One document per succeeded run in the store, each complete (as written locally).
        documents = sorted(k for k in objects if k.startswith(f"{name}/") and k.endswith(".md"))
        assert len(documents) == len(succeeded), (name, documents, len(succeeded))
        stamps = sorted(d.removeprefix(f"{name}/").removesuffix(".md") for d in documents)
        for stamp in stamps:
            assert f"{name}/{stamp}.json" in objects
            if int(name[1:]) % 5 == 0:
                assert f"{name}/{stamp}_charts/trend.png" in objects
        assert store.latest(name)["stamp"] == stamps[-1]
    assert not [k for k in objects if ".tmp" in k or ".staging" in k]
    for runner in runners:
        assert SECRET_KEY not in runner.text()
    # Work spread over the runners.
    assert {r.pid for r in rows} >= {runner.process.pid for runner in runners}
