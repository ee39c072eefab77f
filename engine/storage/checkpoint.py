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
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            return json.loads(archive.read(MANIFEST)), archive.read(STATE)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise DataLoss(f"checkpoint is not readable: {exc}") from exc
