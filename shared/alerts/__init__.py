"""Failure alerts: notification channels, rules per job, an outbox delivered by the API.

- :mod:`shared.alerts.rules`: which events an execution raises (pure).
- :mod:`shared.alerts.outbox`: written by the history recorder in the transaction that
  records the final status (so an alert is never lost nor raised twice).
- :mod:`shared.alerts.delivery`: the loop that sends pending notifications, with retries.
- :mod:`shared.alerts.senders`: webhook (HMAC-SHA256 signed), Slack, email (SMTP).
"""
