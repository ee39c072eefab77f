import math

import pytest

from engine.callbacks.lr_schedule import LearningRateSchedule
from engine.errors import InvalidArgument
from engine.jobs.spec import LRSchedulerSpec


def test_step_and_exponential():
    step = LearningRateSchedule(LRSchedulerSpec(type="step", step_size=2, gamma=0.5), 0.1, 6)
    assert [round(step.lr_for_epoch(e), 6) for e in range(1, 6)] == [0.1, 0.1, 0.05, 0.05, 0.025]
    exp = LearningRateSchedule(LRSchedulerSpec(type="exponential", gamma=0.9), 1.0, 3)
    assert exp.lr_for_epoch(3) == pytest.approx(0.81)


def test_cosine_goes_from_base_to_min_and_warmup_ramps_first():
    cos = LearningRateSchedule(LRSchedulerSpec(type="cosine", min_lr=0.0, warmup_epochs=2), 1.0, 12)
    assert [cos.lr_for_epoch(e) for e in (1, 2)] == [0.5, 1.0]
    assert cos.lr_for_epoch(3) == pytest.approx(1.0)
    assert cos.lr_for_epoch(8) == pytest.approx((1 + math.cos(math.pi * 5 / 10)) / 2)


def test_reduce_on_plateau_and_its_state_survives_a_resume():
    spec = LRSchedulerSpec(type="reduce_on_plateau", patience=2, gamma=0.5)
    schedule = LearningRateSchedule(spec, 0.2, 20)
    for epoch, loss in enumerate([1.0, 0.9, 0.95, 0.97], start=1):
        schedule.observe(epoch, {"validation_loss": loss})
    assert schedule.lr_for_epoch(5) == pytest.approx(0.1)
    resumed = LearningRateSchedule(spec, 0.2, 20)
    resumed.load_state_dict(schedule.state_dict())
    assert resumed.lr_for_epoch(5) == pytest.approx(0.1)


@pytest.mark.parametrize(("spec", "field"), [
    (LRSchedulerSpec(type="triangle"), "training_config.lr_scheduler.type"),
    (LRSchedulerSpec(type="step", gamma=2.0), "training_config.lr_scheduler.gamma"),
    (LRSchedulerSpec(warmup_epochs=10), "training_config.lr_scheduler.warmup_epochs"),
])
def test_bad_schedules_name_the_field(spec, field):
    with pytest.raises(InvalidArgument) as err:
        LearningRateSchedule(spec, 0.1, 10)
    assert err.value.violations[0].field == field
