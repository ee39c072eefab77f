"""The checkpoint file format: engine/storage/checkpoint.py."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from engine.errors import DataLoss
from engine.storage import checkpoint


def test_pack_and_unpack_round_trip():
    blob = checkpoint.pack(b"\x00state\xff", {"framework": "pytorch", "epoch": 3})
    assert checkpoint.unpack(blob) == ({"epoch": 3, "framework": "pytorch"}, b"\x00state\xff")


def test_a_compressed_member_is_refused_before_it_is_inflated():
    # 64 MiB of zeros deflate to about 64 kB: a zip bomb in a checkpoint's clothing.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(checkpoint.MANIFEST, json.dumps({"epoch": 1}))
        info = zipfile.ZipInfo(checkpoint.STATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w") as member:
            for _ in range(64):
                member.write(bytes(1 << 20))
    blob = buffer.getvalue()
    assert len(blob) < 256 * 1024
    with pytest.raises(DataLoss, match="state.bin is compressed or larger than the file"):
        checkpoint.unpack(blob)


def test_a_missing_member_or_a_file_that_is_no_zip_is_data_loss():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(checkpoint.MANIFEST, "{}")
    for blob in (buffer.getvalue(), b"not a zip"):
        with pytest.raises(DataLoss, match="checkpoint is not readable"):
            checkpoint.unpack(blob)
