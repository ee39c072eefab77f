"""Alerts: notifications on state changes and metric thresholds of training jobs, pipeline
executions and tuning jobs, to their logs and to webhooks (rules.py reads the rules,
signing.py signs the POSTs, dispatcher.py fires and delivers them)."""
