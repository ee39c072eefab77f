"""The server prunes a job's periodic checkpoints once it has recorded a newer one, and never
one newer than the recorded checkpoint: those are an orphaned worker's (its server was killed),
and the restarted server resumes from the recorded one."""

from __future__ import annotations

from engine.jobs.trainer import _prune_checkpoints


def _write(directory, *epochs):
    for epoch in epochs:
        (directory / f"epoch-{epoch:06d}.ckpt").write_bytes(b"x")


def _left(directory):
    return sorted(p.name for p in directory.iterdir())


def test_keeps_the_newest_up_to_the_recorded_checkpoint(tmp_path):
    _write(tmp_path, 5, 10, 15, 20)
    (tmp_path / "best.ckpt").write_bytes(b"best")
    _prune_checkpoints(tmp_path, 20, keep=2)
    assert _left(tmp_path) == ["best.ckpt", "epoch-000015.ckpt", "epoch-000020.ckpt"]


def test_never_deletes_the_recorded_checkpoint_for_newer_files(tmp_path):
    # An orphaned worker wrote 30..45 after the server recorded 25 and was killed.
    _write(tmp_path, 15, 20, 25, 30, 35, 40, 45)
    _prune_checkpoints(tmp_path, 25, keep=3)
    assert _left(tmp_path) == [f"epoch-{e:06d}.ckpt" for e in (15, 20, 25, 30, 35, 40, 45)]
    _prune_checkpoints(tmp_path, 30, keep=1)  # the resumed job records 30: 15..25 go, 30.. stay
    assert _left(tmp_path) == [f"epoch-{e:06d}.ckpt" for e in (30, 35, 40, 45)]
