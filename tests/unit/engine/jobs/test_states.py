import pytest

from engine.errors import FailedPrecondition
from engine.jobs import states


def test_final_states_have_no_way_out():
    for final in states.FINAL:
        for target in states.TRANSITIONS:
            assert not states.can_transition(final, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [("PENDING", "RUNNING"), ("RUNNING", "PAUSING"), ("PAUSING", "PAUSED"), ("PAUSED", "PENDING"),
     ("RUNNING", "CANCELLING"), ("CANCELLING", "CANCELLED"), ("RUNNING", "COMPLETED"), ("PAUSING", "COMPLETED")],
)
def test_legal_transitions(current, target):
    states.check_transition("j", current, target)


def test_resuming_a_completed_job_is_a_failed_precondition_that_says_why():
    with pytest.raises(FailedPrecondition) as err:
        states.check_transition("projects/default/trainingJobs/j", "COMPLETED", "PENDING")
    assert "COMPLETED" in err.value.message and "only PAUSED jobs can be resumed" in err.value.message


def test_running_job_cannot_skip_to_pending():
    assert not states.can_transition("RUNNING", "PENDING")
