"""The checkpoint file format: a zip holding the run's own state bytes and a manifest.

The manifest names the framework, architecture, library versions and epoch, so a
checkpoint is self-describing (and a resume can refuse one written by another framework).
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from engine.errors import DataLoss

MANIFEST = "manifest.json"
STATE = "state.bin"


def pack(state: bytes, manifest: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(MANIFEST, json.dumps(manifest, sort_keys=True))
        archive.writestr(STATE, state)
    return buffer.getvalue()


def unpack(blob: bytes) -> tuple[dict[str, Any], bytes]:
    """(manifest, state) of a checkpoint `pack` wrote. Its members are stored uncompressed, so
    one that is not (a zip bomb, whatever wrote it) is refused before a byte is inflated, and
    nothing read can be larger than `blob` itself."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            for name in (MANIFEST, STATE):
                info = archive.getinfo(name)
                if info.compress_type != zipfile.ZIP_STORED or info.file_size > len(blob):
                    raise DataLoss(f"checkpoint is not one this service wrote: {name} is compressed or larger "
                                   "than the file")
            return json.loads(archive.read(MANIFEST)), archive.read(STATE)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise DataLoss(f"checkpoint is not readable: {exc}") from exc
