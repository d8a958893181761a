"""The healer's deployment zip: deterministic, minimal, self-contained, stored by its hash."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import healer
from provisioning.artifact import (
    ARTIFACT_DIR_VAR,
    Artifact,
    artifact_dir,
    build_healer_zip,
    find_artifact,
    store_artifact,
)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "artifacts"  # does not exist yet: store_artifact creates it
    monkeypatch.setenv(ARTIFACT_DIR_VAR, str(directory))
    return directory


def entries(artifact: Artifact) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(io.BytesIO(artifact.zip_bytes)) as archive:
        assert archive.testzip() is None
        return archive.infolist()


def test_zip_is_byte_for_byte_deterministic() -> None:
    assert build_healer_zip().zip_bytes == build_healer_zip().zip_bytes


def test_zip_entries_have_fixed_timestamps_so_file_mtimes_do_not_matter() -> None:
    assert {info.date_time for info in entries(build_healer_zip())} == {(2020, 1, 1, 0, 0, 0)}


def test_zip_holds_only_the_healer_python_files_and_vendored_tenacity() -> None:
    all_names = [info.filename for info in entries(build_healer_zip())]
    vendored = [name for name in all_names if name.startswith("tenacity/")]
    assert "tenacity/__init__.py" in vendored  # the healer's retries need it; Lambda does not provide it
    assert all(name.endswith(".py") and "__pycache__" not in name for name in vendored)
    names = [name for name in all_names if not name.startswith("tenacity/")]
    package_dir = Path(healer.__file__).parent
    assert names == sorted(names)
    assert set(names) == {f"healer/{path.name}" for path in package_dir.glob("*.py")}
    assert "healer/__init__.py" in names
    assert "healer/handler.py" in names
    for name in names:
        assert name.startswith("healer/") and name.endswith(".py"), name
        assert name.count("/") == 1, name
        assert "__pycache__" not in name
        assert "test" not in name.rsplit("/", 1)[-1]


def test_zip_entries_match_the_source_files() -> None:
    import tenacity

    roots = {"healer": Path(healer.__file__).parent, "tenacity": Path(tenacity.__file__).parent}
    with zipfile.ZipFile(io.BytesIO(build_healer_zip().zip_bytes)) as archive:
        for name in archive.namelist():
            package, _, rest = name.partition("/")
            assert archive.read(name) == (roots[package] / rest).read_bytes()


def test_code_sha256_is_base64_of_the_sha256_digest() -> None:
    artifact = build_healer_zip()
    assert artifact.code_sha256 == base64.b64encode(hashlib.sha256(artifact.zip_bytes).digest()).decode("ascii")
    # A known vector, so the test does not just repeat the implementation.
    assert Artifact(b"").code_sha256 == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


def test_store_then_find_round_trips(store: Path) -> None:
    artifact = build_healer_zip()
    stored = store_artifact(artifact)
    assert stored.parent == store
    assert stored.read_bytes() == artifact.zip_bytes
    assert find_artifact(artifact.code_sha256) == stored


def test_storing_twice_keeps_one_file_and_no_temporaries(store: Path) -> None:
    artifact = build_healer_zip()
    assert store_artifact(artifact) == store_artifact(artifact)
    assert [path.suffix for path in store.iterdir()] == [".zip"]


def test_find_returns_none_for_an_unknown_hash(store: Path) -> None:
    store_artifact(build_healer_zip())
    assert find_artifact(Artifact(b"some other code").code_sha256) is None


def test_find_returns_none_when_no_store_exists_yet(store: Path) -> None:
    assert not store.exists()
    assert find_artifact(build_healer_zip().code_sha256) is None


def test_find_returns_none_for_a_corrupted_file(store: Path) -> None:
    artifact = build_healer_zip()
    stored = store_artifact(artifact)
    corrupted = bytearray(artifact.zip_bytes)
    corrupted[len(corrupted) // 2] ^= 0xFF
    stored.write_bytes(bytes(corrupted))
    assert find_artifact(artifact.code_sha256) is None


def test_artifact_dir_defaults_to_the_xdg_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ARTIFACT_DIR_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert artifact_dir() == tmp_path / "s3-self-healing" / "artifacts"


# Imports healer.handler with the project's other packages blocked, then reports where every healer
# module came from: a dependency outside the zip fails the import or shows up as a foreign path.
_IMPORT_STANDALONE = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"provisioning", "experiments", "tests"}:
            raise ImportError("the Lambda package imported " + name)
sys.meta_path.insert(0, Block())
import healer.handler
print(healer.handler.__file__)
for name, module in sorted(sys.modules.items()):
    if name == "healer" or name.startswith("healer."):
        print(module.__file__)
"""


def test_zip_imports_standalone_without_the_installed_project(tmp_path: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(build_healer_zip().zip_bytes)) as archive:
        archive.extractall(tmp_path)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_STANDALONE],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    handler_file, *module_files = result.stdout.split()
    root = tmp_path.resolve()
    assert Path(handler_file).resolve().is_relative_to(root), handler_file
    assert module_files
    for module_file in module_files:
        assert Path(module_file).resolve().is_relative_to(root), module_file
