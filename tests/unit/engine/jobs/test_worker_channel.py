"""A worker's epoch reaches the server as one message (worker._Channel.together), unpacked by
the supervisor in order: one wake-up and one transaction per epoch on the server's side."""

import multiprocessing

import pytest

from engine.jobs.worker import _Channel


def test_an_epochs_messages_go_as_one_in_order_even_when_the_epoch_fails():
    ours, theirs = multiprocessing.Pipe()
    channel = _Channel(theirs, parent_is_server=False)
    channel.log("before")
    assert ours.recv() == ("log", [("info", "before", 0)])
    with channel.together():
        channel.send("metrics", {"epoch": 1})
        channel.log("epoch 1/2")
        assert not ours.poll()  # held until the epoch is done
    with pytest.raises(OSError):
        with channel.together():
            channel.send("metrics", {"epoch": 2})
            raise OSError("disk full while writing the checkpoint")
    received = [ours.recv() for _ in range(2)]
    assert not ours.poll()
    assert received == [
        ("batch", [("metrics", {"epoch": 1}), ("log", [("info", "epoch 1/2", 0)])]),
        ("batch", [("metrics", {"epoch": 2})]),  # what the epoch reported before it failed still goes
    ]
