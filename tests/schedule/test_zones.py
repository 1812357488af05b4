"""zones: finding the machine's zone name, and checked zone look-ups."""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from eil_pipelines.schedule.zones import get_zone, is_zone_name, local_zone_name


def fake_machine(
    tmp_path: Path, timezone_file: str | None = None, localtime_link: str | None = None
) -> Path:
    etc = tmp_path / "etc"
    etc.mkdir()
    if timezone_file is not None:
        (etc / "timezone").write_text(timezone_file, encoding="utf-8")
    if localtime_link is not None:
        os.symlink(localtime_link, etc / "localtime")
    return tmp_path


@pytest.mark.parametrize(
    ("tz", "name"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        (":America/New_York", "America/New_York"),
        ("/usr/share/zoneinfo/Asia/Tokyo", "Asia/Tokyo"),
        (":/usr/share/zoneinfo/posix/Europe/Paris", "Europe/Paris"),
        ("  UTC ", "UTC"),
    ],
)
def test_tz_variable_comes_first(tmp_path: Path, tz: str, name: str) -> None:
    root = fake_machine(tmp_path, timezone_file="Europe/Lisbon\n")
    assert local_zone_name({"TZ": tz}, root) == name


@pytest.mark.parametrize("tz", ["", "CET-1CEST,M3.5.0,M10.5.0/3", "Mars/Olympus", "Europe", ":"])
def test_tz_variable_without_a_zone_name_is_skipped(tmp_path: Path, tz: str) -> None:
    root = fake_machine(tmp_path, timezone_file="Europe/Lisbon\n")
    assert local_zone_name({"TZ": tz}, root) == "Europe/Lisbon"


def test_etc_timezone(tmp_path: Path) -> None:
    root = fake_machine(
        tmp_path,
        timezone_file="# written by the installer\nAmerica/Chicago\n",
        localtime_link="/usr/share/zoneinfo/Europe/Berlin",
    )
    assert local_zone_name({}, root) == "America/Chicago"


@pytest.mark.parametrize(
    ("target", "name"),
    [
        ("/usr/share/zoneinfo/Europe/Berlin", "Europe/Berlin"),
        ("../usr/share/zoneinfo/America/Sao_Paulo", "America/Sao_Paulo"),
        ("/usr/share/zoneinfo/right/Asia/Kolkata", "Asia/Kolkata"),
        ("/var/db/timezone/zoneinfo/Australia/Sydney", "Australia/Sydney"),  # macOS
        ("/etc/some/other/file", "UTC"),
        ("/usr/share/zoneinfo/Not/AZone", "UTC"),
    ],
)
def test_localtime_symlink(tmp_path: Path, target: str, name: str) -> None:
    root = fake_machine(tmp_path, timezone_file="not a zone\n", localtime_link=target)
    assert local_zone_name({}, root) == name


def test_localtime_copied_file_has_no_name(tmp_path: Path) -> None:
    root = fake_machine(tmp_path)
    (root / "etc" / "localtime").write_bytes(b"TZif2 not really")
    assert local_zone_name({}, root) == "UTC"


def test_nothing_to_go_on_means_utc(tmp_path: Path) -> None:
    assert local_zone_name({}, fake_machine(tmp_path)) == "UTC"


def test_defaults_read_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Pacific/Auckland")
    assert local_zone_name() == "Pacific/Auckland"
    assert get_zone(None) == ZoneInfo("Pacific/Auckland")


def test_get_zone() -> None:
    assert get_zone("Europe/Berlin") is ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize("name", ["Mars/Olympus", "Europe", "", "../etc/passwd", "/etc/localtime"])
def test_get_zone_unknown(name: str) -> None:
    assert not is_zone_name(name)
    with pytest.raises(ValueError) as caught:
        get_zone(name)
    assert str(caught.value) == (
        f'unknown time zone "{name}": expected an IANA name such as "Europe/Berlin" or "UTC"'
    )
