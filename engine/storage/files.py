"""Atomic file writes with a recorded sha256, and verified reads.

Every artifact (datasets, checkpoints, exports) goes through here so a crash
mid-write never leaves a torn file under the final name.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.errors import DataLoss

CHUNK = 1024 * 1024


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, write: Callable[[str], None]) -> tuple[int, str]:
    """Call `write(tmp_path)` to produce the file, then fsync and rename it to `path`.

    Returns (size_bytes, sha256). The temporary file lives in the same directory so the
    rename is atomic; it is removed if `write` raises.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        size = os.path.getsize(tmp)
        digest = sha256_file(tmp)
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        return size, digest
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> tuple[int, str]:
    def _write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    return write_atomic(path, _write)


def verify(path: str | os.PathLike, sha256: str) -> None:
    """Raise DataLoss when the file is missing or its bytes no longer match `sha256`."""
    if not os.path.exists(path):
        raise DataLoss(f"stored file {Path(path).name} is missing")
    actual = sha256_file(path)
    if actual != sha256:
        raise DataLoss(f"stored file {Path(path).name} is corrupted: sha256 {actual} != recorded {sha256}")


def read_verified(path: str | os.PathLike, sha256: str) -> bytes:
    data = Path(path).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise DataLoss(f"stored file {Path(path).name} is corrupted: sha256 {actual} != recorded {sha256}")
    return data


def iter_chunks(path: str | os.PathLike, chunk_size: int = CHUNK) -> Iterator[bytes]:
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            yield block
