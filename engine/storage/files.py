"""Atomic file writes with a recorded sha256, and verified reads.

Every artifact (datasets, checkpoints, exports) goes through here so a crash
mid-write never leaves a torn file under the final name.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

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

    Returns (size_bytes, sha256), read back from the written file. The temporary file lives
    in the same directory so the rename is atomic; it is removed if `write` raises.
    """
    def produce(tmp: str) -> tuple[int, str]:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        return os.path.getsize(tmp), sha256_file(tmp)

    return _replace_atomic(path, produce)


def write_atomic_hashed(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> tuple[int, str]:
    """`write_atomic` for writers that take a file object: `write(f)` writes the whole file
    through `f`, which hashes the bytes on their way, so the file is never read back (for a
    dataset, that read was a second pass over hundreds of megabytes)."""
    def produce(tmp: str) -> tuple[int, str]:
        with open(tmp, "wb") as out:
            hashing = HashingWriter(out)
            write(hashing)
            out.flush()
            os.fsync(out.fileno())
        return hashing.size, hashing.hexdigest()

    return _replace_atomic(path, produce)


class HashingWriter(io.RawIOBase):
    """A write-only, sequential file that passes bytes on to `out` and hashes and counts them."""

    def __init__(self, out: BinaryIO):
        super().__init__()
        self._out = out
        self._digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._digest.update(data)
        written = self._out.write(data)
        self.size += written
        return written

    def tell(self) -> int:
        return self.size

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _replace_atomic(path: str | os.PathLike, produce: Callable[[str], tuple[int, str]]) -> tuple[int, str]:
    """`produce(tmp_path)` writes and fsyncs a temporary file beside `path` and returns its
    (size, sha256); the file then replaces `path` atomically. It is removed if `produce` raises."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    try:
        size, digest = produce(tmp)
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
