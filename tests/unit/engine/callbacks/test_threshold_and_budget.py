"""metric_threshold and time_budget callbacks (engine/callbacks), and the registry's checks."""

from __future__ import annotations

import math

import pytest

from engine.callbacks.registry import build, check, ordered
from engine.callbacks.threshold import MetricThreshold
from engine.callbacks.time_budget import TimeBudget
from engine.errors import Aborted, FailedPrecondition, InvalidArgument


def test_a_threshold_counts_epochs_in_a_row_and_resumes_its_count():
    stop = MetricThreshold(metric="val_loss", below=0.5, patience=2, name="low")
    assert not stop.after_epoch(1, {"validation_loss": 0.4})
    assert not stop.after_epoch(2, {"validation_loss": 0.6})  # the run is broken: counting starts again
    assert not stop.after_epoch(3, {"validation_loss": 0.3})
    again = MetricThreshold(metric="val_loss", below=0.5, patience=2, name="low")
    again.load_state_dict(stop.state_dict())
    assert again.after_epoch(4, {"validation_loss": 0.2})
    assert again.stop_reason == "callback 'low': val_loss 0.2 is below 0.5 for 2 epochs at epoch 4"


def test_a_failing_threshold_counts_a_missing_or_nan_metric_as_crossed():
    fail = MetricThreshold(metric="loss", above=10, action="fail", min_epoch=2, name="nan")
    assert not fail.after_epoch(1, {"training_loss": math.nan})  # before min_epoch
    with pytest.raises(Aborted, match="callback 'nan': loss is not reported at epoch 2"):
        fail.after_epoch(2, {"training_loss": math.nan})
    assert not MetricThreshold(metric="accuracy", above=0.9).after_epoch(1, {})  # "stop" waits for a value


def test_a_time_budget_stops_before_an_epoch_that_would_not_fit():
    budget = TimeBudget(duration="10s")
    assert not budget.after_epoch(1, {"epoch_seconds": 3.0})  # 3 spent, 6 after another: fits
    assert not budget.after_epoch(2, {"epoch_seconds": 3.0})  # 6, 9: fits
    assert budget.after_epoch(3, {"epoch_seconds": 3.0})  # 9, 12: would not
    resumed = TimeBudget(seconds=10)
    resumed.load_state_dict({"spent": 8.0})
    assert resumed.after_epoch(4, {"epoch_seconds": 1.5})


def test_callbacks_are_ordered_by_priority_then_as_listed():
    entries = [{"name": "a", "priority": 2}, {"name": "b"}, {"name": "c", "priority": -1}, {"name": "d"}]
    assert [e["name"] for _, e in ordered(entries)] == ["c", "b", "d", "a"]


def test_whole_numbers_from_a_struct_are_ints_and_registrations_are_checked():
    built = build([{"name": "t", "type": "metric_threshold", "config": {"metric": "accuracy", "above": 0.9,
                                                                        "patience": 2.0}}], {})
    assert built[0][1].patience == 2 and isinstance(built[0][1].patience, int)
    with pytest.raises(InvalidArgument, match=r"callbacks\[0\].config.min_epoch: must be a whole number"):
        check([{"name": "t", "type": "metric_threshold", "config": {"metric": "accuracy", "above": 1,
                                                                    "min_epoch": 0.5}}], {})
    with pytest.raises(FailedPrecondition, match="configuration must be fixed"):
        check([{"name": "t", "type": "gone"}], {"gone": "no_such_module:Class"})
