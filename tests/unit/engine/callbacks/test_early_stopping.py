import pytest

from engine.callbacks.early_stopping import EarlyStopping


def test_stops_after_patience_epochs_without_improvement():
    stopper = EarlyStopping(metric="val_loss", patience=2)
    losses = [0.9, 0.8, 0.85, 0.81, 0.82]
    votes = [stopper.after_epoch(i + 1, {"validation_loss": v}) for i, v in enumerate(losses)]
    assert votes == [False, False, False, False, True]
    assert stopper.best == 0.8 and stopper.best_epoch == 2
    assert "did not improve for 3 epochs" in stopper.stop_reason


def test_mode_follows_the_metric_and_min_delta_counts():
    stopper = EarlyStopping(metric="accuracy", patience=0, min_delta=0.01)
    assert stopper.mode == "max"
    assert stopper.after_epoch(1, {"accuracy": 0.90}) is False
    assert stopper.after_epoch(2, {"accuracy": 0.905}) is True  # +0.005 < min_delta


def test_bad_configuration_says_the_fix():
    with pytest.raises(ValueError, match="pass mode='min' or mode='max'"):
        EarlyStopping(mode="down")


def test_missing_metric_warns_unless_strict():
    with pytest.warns(RuntimeWarning, match="does not report"):
        assert EarlyStopping(metric="rmse").after_epoch(1, {"accuracy": 1.0}) is False
    with pytest.raises(RuntimeError):
        EarlyStopping(metric="rmse", strict=True).after_epoch(1, {"accuracy": 1.0})


def test_state_round_trip_continues_the_count():
    first = EarlyStopping(patience=1)
    first.after_epoch(1, {"validation_loss": 0.5})
    first.after_epoch(2, {"validation_loss": 0.6})
    resumed = EarlyStopping(patience=1)
    resumed.load_state_dict(first.state_dict())
    assert resumed.after_epoch(3, {"validation_loss": 0.7}) is True
