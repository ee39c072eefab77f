"""engine/alerts/dispatcher.py without a network: what the API shows of a webhook URL, and which
hosts a server others can reach refuses to call."""

from __future__ import annotations

import pytest

from engine.alerts.dispatcher import Alerts, firing, shown_url, state_line


@pytest.mark.parametrize("url, shown", [
    ("https://hooks.slack.com/services/T0/B0/secret", "https://hooks.slack.com/…"),
    ("https://user:pass@example.com/?token=abc", "https://example.com/…"),
    ("http://127.0.0.1:8080/hook", "http://127.0.0.1:8080/…"),
    ("http://[::1]:9/", "http://[::1]:9"),
    ("", ""),
])
def test_the_api_shows_only_scheme_and_host(url, shown):
    assert shown_url(url) == shown


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://localhost/x", "http://10.1.2.3/x",
                                 "http://169.254.169.254/latest/meta-data", "http://[::1]/x"])
def test_a_server_others_reach_refuses_its_own_network(url):
    refusing = Alerts(db=None, private_targets=False)
    assert refusing._refused(url).startswith("refused: ")
    assert Alerts(db=None, private_targets=True)._refused(url) == ""


def test_state_rules_fire_on_their_states_only():
    rules = [{"name": "a", "on_states": ["FAILED"]}, {"name": "b", "on_states": ["COMPLETED", "FAILED"]},
             {"name": "c", "metric": {"metric": "accuracy", "above": 0.9}}]
    assert [r["name"] for r in firing(rules, "FAILED")] == ["a", "b"]
    assert firing(rules, "RUNNING") == [] and firing(None, "FAILED") == []
    assert state_line(rules[0], "projects/p/trainingJobs/j", "FAILED", "failed: x") == \
        "alert 'a': projects/p/trainingJobs/j is FAILED (failed: x)"
