"""Delivering the outbox: claim a due notification, send it, record the attempt.

At least once: a notification is claimed for a lease (``claimed_until``) in its own
transaction, sent outside any transaction, and its outcome recorded afterwards. A
deliverer that dies mid-send leaves the claim to expire; the next one sends again with the
same ``idempotency_key`` (receivers deduplicate on it) and marks the lost attempt
``interrupted``. The conditional claim (UPDATE … WHERE not claimed) lets several API
replicas share the outbox without sending one notification twice at the same time.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from shared.alerts.models import ChannelRow, NotificationAttemptRow, NotificationRow
from shared.alerts.senders import Outcome, send
from shared.alerts.settings import AlertSettings
from shared.errors import ConfigError
from shared.secrets import SecretBox
from shared.store.models import utcnow

log = logging.getLogger("datamig.alerts.delivery")
BATCH = 20


def backoff_s(attempt: int, *, base_s: float, max_s: float) -> float:
    """Wait after failed attempt ``attempt`` (1-based): base, 2×base, 4×base … at most max_s."""
    return min(max_s, base_s * (2 ** max(0, attempt - 1)))


def due_ids(session: Session, *, now: datetime, limit: int = BATCH) -> list[int]:
    return list(session.scalars(sa.select(NotificationRow.id).where(
        NotificationRow.status == "pending", NotificationRow.next_attempt_at <= now,
        sa.or_(NotificationRow.claimed_until.is_(None), NotificationRow.claimed_until < now))
        .order_by(NotificationRow.next_attempt_at, NotificationRow.id).limit(limit)).all())


def claim(session: Session, note_id: int, *, now: datetime, lease_s: float) -> NotificationAttemptRow | None:
    """Take one notification for ``lease_s`` and open its attempt; None if another took it. Commits."""
    taken = session.execute(sa.update(NotificationRow).where(
        NotificationRow.id == note_id, NotificationRow.status == "pending",
        sa.or_(NotificationRow.claimed_until.is_(None), NotificationRow.claimed_until < now))
        .values(claimed_until=now + timedelta(seconds=lease_s), attempts=NotificationRow.attempts + 1)
        .execution_options(synchronize_session=False)).rowcount
    if taken != 1:
        session.rollback()
        return None
    session.execute(sa.update(NotificationAttemptRow).where(
        NotificationAttemptRow.notification_id == note_id, NotificationAttemptRow.status == "sending")
        .values(status="interrupted", response="the delivering service stopped during this attempt")
        .execution_options(synchronize_session=False))
    note = session.get(NotificationRow, note_id, populate_existing=True)
    attempt = NotificationAttemptRow(notification_id=note_id, attempt=note.attempts, at=now, status="sending")
    session.add(attempt)
    session.commit()
    return attempt


def record(session: Session, note: NotificationRow, attempt: NotificationAttemptRow, outcome: Outcome, *,
           settings: AlertSettings, now: datetime) -> None:
    """The attempt's result, and what happens next (sent, retry later, or given up). Commits."""
    attempt.status = "sent" if outcome.ok else "error"
    attempt.response_code, attempt.response = outcome.code, outcome.response
    note.claimed_until = None
    if outcome.ok:
        note.status, note.sent_at = "sent", now
    elif not outcome.retry or note.attempts >= settings.alert_max_attempts:
        note.status = "failed"
    else:
        note.next_attempt_at = now + timedelta(seconds=backoff_s(
            note.attempts, base_s=settings.alert_retry_base_s, max_s=settings.alert_retry_max_s))
    session.commit()


def channel_secret(channel: ChannelRow, box: SecretBox) -> str | None:
    """Raises ConfigError when the secret was encrypted with another key."""
    return box.decrypt(channel.secret_enc)


def deliver(sessions: sessionmaker[Session], note_id: int, *, box: SecretBox, settings: AlertSettings) -> bool:
    """Claim, send and record one notification. Returns whether this call attempted it."""
    with sessions() as session:
        attempt = claim(session, note_id, now=utcnow(), lease_s=settings.lease_s())
        if attempt is None:
            return False
        note = session.get(NotificationRow, note_id)
        channel = session.get(ChannelRow, note.channel_id)
        session.commit()  # no transaction stays open while the receiver answers
        outcome = send_to(channel, note, box=box, timeout_s=settings.alert_timeout_s)
        record(session, note, attempt, outcome, settings=settings, now=utcnow())
        log.info("notification %s (%s, channel %s) attempt %d: %s", note_id, note.event, note.channel_id,
                 attempt.attempt, outcome.response[:200])
        return True


def send_to(channel: ChannelRow | None, note: NotificationRow, *, box: SecretBox, timeout_s: float) -> Outcome:
    """Send ``note`` through ``channel``; every problem becomes an outcome."""
    if channel is None:
        return Outcome(False, None, f"channel {note.channel_id} no longer exists", retry=False)
    try:
        return send(channel.kind, dict(channel.settings or {}), channel_secret(channel, box), note.payload,
                    timeout_s=timeout_s)
    except ConfigError as exc:
        return Outcome(False, None, str(exc), retry=False)
    except Exception as exc:  # noqa: BLE001 - a bad channel must not stop the loop
        log.exception("notification %s: sending failed unexpectedly", note.id)
        return Outcome(False, None, type(exc).__name__, retry=True)


class Deliverer:
    """The delivery loop of one API process (a daemon thread)."""

    def __init__(self, sessions: sessionmaker[Session], *, box: SecretBox, settings: AlertSettings) -> None:
        self._sessions, self._box, self._settings = sessions, box, settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="alert-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def run_once(self) -> int:
        """One pass over the due notifications. Returns how many were attempted."""
        with self._sessions() as session:
            ids = due_ids(session, now=utcnow())
        done = 0
        for note_id in ids:
            if self._stop.is_set():
                break
            done += deliver(self._sessions, note_id, box=self._box, settings=self._settings)
        return done

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # noqa: BLE001 - the metadata store may be away for a while
                log.exception("alert delivery pass failed; trying again")
                busy = 0
            if not busy:
                self._stop.wait(self._settings.alert_poll_s)
