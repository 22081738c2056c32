"""Alerts on anomalous events, sent to Alertmanager (API v2) and/or a generic webhook.

Events: a spike of denials, a revoked or expired key used, a new signing source for a
repository, a registry down for long, a trust reload failing (`detect`, `signers`). Delivery is
queued and sent by a background task (`deliver`); the admission path only records.
"""

from signet.alerts.event import Alert
from signet.alerts.monitor import Alerts
from signet.alerts.settings import AlertSettings

__all__ = ["Alert", "AlertSettings", "Alerts"]
