"""Seed objects with realistic variety into both the backup and the production bucket."""

from __future__ import annotations

import hashlib
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_OBJECTS = 100
_PREFIXES = [
    "invoices/2026/11/",
    "invoices/2026/12/",
    "images/raw/",
    "images/thumbs/",
    "logs/app/",
    "docs/",
    "exports/q4 reports/",
    "",
]
_NAMES = ["report", "photo", "données", "backup+copy", "quarterly summary", "日本語", "a+b=c", "naïve café", "item"]
_TYPES = {
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".jpg": "image/jpeg",
    ".csv": "text/csv",
    ".bin": "application/octet-stream",
}


@dataclass(frozen=True)
class SeededObject:
    key: str
    size: int
    sha256: str
    md5: str  # the ETag S3 gives a single-part upload of these bytes
    content_type: str
    metadata: dict[str, str] = field(default_factory=dict)


def _size(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.05:
        return 0
    if roll < 0.85:
        return rng.randint(100, 64 * 1024)
    if roll < 0.98:
        return rng.randint(64 * 1024, 512 * 1024)
    return rng.randint(1024 * 1024, 3 * 1024 * 1024)


def plan_objects(count: int, *, seed: int = 0) -> list[tuple[SeededObject, bytes]]:
    """Deterministic objects: nested prefixes, spaces, '+', unicode; 0 B to a few MiB."""
    rng = random.Random(seed)
    planned = []
    for index in range(count):
        extension = rng.choice(list(_TYPES))
        key = f"{rng.choice(_PREFIXES)}{rng.choice(_NAMES)} {index:05d}{extension}"
        body = rng.randbytes(_size(rng))
        item = SeededObject(
            key=key,
            size=len(body),
            sha256=hashlib.sha256(body).hexdigest(),
            md5=hashlib.md5(body, usedforsecurity=False).hexdigest(),
            content_type=_TYPES[extension],
            metadata={"origin": "seed", "seed-index": str(index)},
        )
        planned.append((item, body))
    return planned


def seed_objects(
    s3: S3Client,
    production_bucket: str,
    backup_bucket: str,
    count: int = DEFAULT_OBJECTS,
    *,
    seed: int = 0,
    workers: int = 8,
) -> list[SeededObject]:
    """Write ``count`` objects to backup, then production; return what was written."""
    planned = plan_objects(count, seed=seed)

    def put(entry: tuple[SeededObject, bytes]) -> SeededObject:
        item, body = entry
        for bucket in (backup_bucket, production_bucket):
            s3.put_object(Bucket=bucket, Key=item.key, Body=body, ContentType=item.content_type, Metadata=item.metadata)
        return item

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(put, planned))
