"""Notifications: channels, per-project rules, per-person email preferences and delivery through RQ.

Other areas call only `notify_run_finished` and `notify_deployment_event`; both queue
a job and return at once. See docs/notifications.md for the whole picture.
"""

from app.notifications.hooks import notify_deployment_event, notify_run_finished

__all__ = ["notify_deployment_event", "notify_run_finished"]
