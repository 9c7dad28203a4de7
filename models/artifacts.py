"""Versioned model artifacts under ``$CINEAGENT_HOME/artifacts/<version>/`` with a manifest.

A version is written into a hidden temp directory and renamed into place in one step, then the
``CURRENT`` pointer is replaced atomically: readers see the old version or the new one, never a
half-written one. The manifest records the data checksum, parameters, metrics, code version,
creation time and the sha256 of every file; loading verifies all of them, so a corrupt or
mismatched artifact is a clear error, never a silent wrong answer.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from data.store import home, sha256_file, write_bytes_atomic, write_json_atomic

from data.errors import CineAgentError

class ArtifactError(CineAgentError, RuntimeError):
    """No usable artifact: missing, corrupt, or built for other data/code. The message says the fix."""


def artifacts_root() -> Path:
    return home() / "artifacts"


def code_version() -> str:
    """Git commit of the source tree when available, else the package version."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5).stdout.strip()
        if sha:
            return sha
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cineagent")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Manifest:
    version: str
    path: Path
    data: dict[str, Any]

    @property
    def data_checksum(self) -> str:
        return self.data["data_checksum"]


def write_version(build: Callable[[Path], dict[str, Any]], data_checksum: str, parameters: dict, metrics: dict | None = None,
                  make_current: bool = True, suffix: str = "") -> Manifest:
    """Create a new version: ``build(tmp_dir)`` writes the files and returns extra manifest fields.
    ``make_current``: also point ``CURRENT`` at it (a challenger, or a bundle kept for evaluation,
    is written without)."""
    root = artifacts_root()
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{os.getpid()}"
    version, n = f"{stamp}{suffix}", 1
    while (root / version).exists():   # two versions in one second of one process (fast toy trainings)
        n += 1
        version = f"{stamp}.{n}{suffix}"
    tmp = root / f".tmp-{version}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        extra = build(tmp) or {}
        files = {str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = {
            "version": version,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "code_version": code_version(),
            "data_checksum": data_checksum,
            "parameters": parameters,
            "metrics": metrics or {},
            "files": files,
            **extra,
        }
        write_json_atomic(tmp / "manifest.json", manifest)
        os.replace(tmp, root / version)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if make_current:
        set_current(version)
    return Manifest(version, root / version, manifest)


def set_current(version: str) -> None:
    write_bytes_atomic(artifacts_root() / "CURRENT", version.encode())


def current_version() -> str | None:
    pointer = artifacts_root() / "CURRENT"
    return pointer.read_text().strip() if pointer.exists() else None


def open_version(version: str | None = None, data_checksum: str | None = None) -> Manifest:
    """Verify and return a version's manifest (the current one by default)."""
    version = version or current_version()
    if not version:
        raise ArtifactError(f"no trained models under {artifacts_root()}; run `cineagent train`")
    path = artifacts_root() / version
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"artifact {version} has no readable manifest ({exc}); run `cineagent train`") from None
    for name, digest in manifest.get("files", {}).items():
        file = path / name
        if not file.exists():
            raise ArtifactError(f"artifact {version} is incomplete: {name} is missing; run `cineagent train`")
        if sha256_file(file) != digest:
            raise ArtifactError(f"artifact {version} is corrupt: {name} does not match its checksum; run `cineagent train`")
    if data_checksum and manifest.get("data_checksum") != data_checksum:
        raise ArtifactError(f"artifact {version} was trained on different MovieLens data; run `cineagent train`")
    return Manifest(version, path, manifest)
