"""Object store URLs of ``[storage] reports``: ``s3://bucket/prefix``."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["StoreLocation", "is_store_url", "parse_store_url"]


@dataclass(frozen=True)
class StoreLocation:
    """Where reports go in an object store."""

    bucket: str
    """The bucket."""
    prefix: str
    """The key prefix, without a trailing ``/`` (``""``: the bucket's root)."""

    @property
    def url(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def parse_store_url(url: str) -> StoreLocation:
    """``s3://bucket/some/prefix`` → its bucket and prefix; ``ValueError`` when it is not one."""
    if not url.startswith("s3://"):
        raise ValueError("expected an s3://bucket/prefix URL")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not _BUCKET.match(bucket):
        raise ValueError(
            "expected an s3://bucket/prefix URL whose bucket name is 3 to 63 lower-case "
            "letters, digits, dots and hyphens"
        )
    prefix = prefix.rstrip("/")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise ValueError("expected a prefix of plain names separated by single slashes")
    return StoreLocation(bucket, prefix)


def is_store_url(value: str) -> bool:
    """Whether a ``[storage] reports`` value names an object store rather than a folder."""
    return "://" in value
