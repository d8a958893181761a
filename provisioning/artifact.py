"""Build the healer's deployment zip and keep a copy keyed by its CodeSha256.

The local runtime executes exactly what was uploaded: it looks the function's CodeSha256 up
here (emulators return a ``Code.Location`` that cannot be downloaded), so the zip is built
deterministically (fixed timestamps, sorted entries) and stored before it is deployed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import tenacity

import healer

ARTIFACT_DIR_VAR = "S3SH_ARTIFACT_DIR"
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Artifact:
    zip_bytes: bytes

    @property
    def code_sha256(self) -> str:
        """Base64 SHA-256, the form Lambda reports as ``CodeSha256``."""
        return base64.b64encode(hashlib.sha256(self.zip_bytes).digest()).decode("ascii")


# The Lambda runtime provides boto3; everything else the healer imports is vendored here.
VENDORED_PACKAGES = (tenacity,)


def build_healer_zip() -> Artifact:
    """Zip the ``healer`` package and its vendored dependencies (Python files only, no caches)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for package in (healer, *VENDORED_PACKAGES):
            package_dir = Path(str(package.__file__)).parent
            for path in sorted(package_dir.rglob("*.py")):
                name = f"{package_dir.name}/{path.relative_to(package_dir).as_posix()}"
                info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    return Artifact(buffer.getvalue())


def artifact_dir() -> Path:
    configured = os.environ.get(ARTIFACT_DIR_VAR)
    if configured:
        return Path(configured)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "s3-self-healing" / "artifacts"


def _file_name(code_sha256: str) -> str:
    return base64.b64decode(code_sha256).hex() + ".zip"


def store_artifact(artifact: Artifact) -> Path:
    """Write the zip under its hash (atomically, so concurrent writers never see half a file)."""
    directory = artifact_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / _file_name(artifact.code_sha256)
    if not path.exists():
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(artifact.zip_bytes)
        os.replace(temporary, path)
    return path


def find_artifact(code_sha256: str) -> Path | None:
    """The stored zip whose content hashes to ``code_sha256``, or None."""
    path = artifact_dir() / _file_name(code_sha256)
    if not path.exists():
        return None
    if Artifact(path.read_bytes()).code_sha256 != code_sha256:
        return None  # corrupted or tampered with: do not run it
    return path
