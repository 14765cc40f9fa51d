"""Sending one notification through one channel: generic webhook, Slack, email (SMTP).

Each sender returns an :class:`Outcome` and never raises for a delivery problem: an HTTP
error, a refused connection or an SMTP error is an outcome like any other, recorded as the
attempt's result. Secrets (webhook key, Slack URL, SMTP password) never enter an outcome.
"""
from __future__ import annotations

import json
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx

from shared.alerts.signing import EVENT_HEADER, KEY_HEADER, SIGNATURE_HEADER, sign
from shared.connections import mask_secrets_in_text

RESPONSE_CHARS = 500
USER_AGENT = "semantico-datamig-alerts/1"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    code: int | None
    response: str
    retry: bool = True  # False: retrying cannot help (e.g. 4xx other than 408/429, bad settings)


def send(kind: str, settings: dict[str, Any], secret: str | None, payload: dict[str, Any], *,
         timeout_s: float) -> Outcome:
    """Deliver ``payload`` through a channel of ``kind``."""
    try:
        if kind == "webhook":
            return _webhook(settings, secret, payload, timeout_s=timeout_s)
        if kind == "slack":
            return _slack(secret or settings.get("url", ""), payload, timeout_s=timeout_s)
        if kind == "email":
            return _email(settings, secret, payload, timeout_s=timeout_s)
        return Outcome(False, None, f"unknown channel kind {kind!r}", retry=False)
    except smtplib.SMTPException as exc:
        code = getattr(exc, "smtp_code", None)
        permanent = isinstance(exc, (smtplib.SMTPNotSupportedError, smtplib.SMTPRecipientsRefused)) or (
            isinstance(code, int) and code >= 500)  # a refused login, sender or recipient: retrying cannot help
        return Outcome(False, code if isinstance(code, int) else None,
                       _clean(f"{type(exc).__name__}: {exc}", secret), retry=not permanent)
    except (httpx.HTTPError, OSError) as exc:
        return Outcome(False, None, _clean(f"{type(exc).__name__}: {exc}", secret))


def _clean(text: str, secret: str | None) -> str:
    text = mask_secrets_in_text(text)
    if secret:
        text = text.replace(secret, "***")
    return text[:RESPONSE_CHARS]


def _http_outcome(response: httpx.Response, secret: str | None) -> Outcome:
    code = response.status_code
    text = _clean(response.text.strip(), secret)
    ok = 200 <= code < 300
    return Outcome(ok, code, f"HTTP {code}" + (f": {text}" if text else ""),
                   retry=not ok and (code >= 500 or code in (408, 425, 429)))


def webhook_request(settings: dict[str, Any], secret: str | None, payload: dict[str, Any]) -> tuple[bytes, dict]:
    """The exact body and headers a webhook receives (the signature covers these bytes)."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()
    headers = {str(k): str(v) for k, v in (settings.get("headers") or {}).items()}  # ours below win
    headers.update({"Content-Type": "application/json", "User-Agent": USER_AGENT,
                    EVENT_HEADER: str(payload.get("event", "")), KEY_HEADER: str(payload.get("idempotency_key", ""))})
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    return body, headers


def _webhook(settings: dict[str, Any], secret: str | None, payload: dict[str, Any], *, timeout_s: float) -> Outcome:
    body, headers = webhook_request(settings, secret, payload)
    response = httpx.post(settings["url"], content=body, headers=headers, timeout=timeout_s, follow_redirects=False)
    return _http_outcome(response, secret)


def slack_message(payload: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message (also understood by Mattermost and Rocket.Chat)."""
    return {"text": payload.get("text", ""), "unfurl_links": False}


def _slack(url: str, payload: dict[str, Any], *, timeout_s: float) -> Outcome:
    if not url:
        return Outcome(False, None, "the channel has no webhook URL (its secret)", retry=False)
    response = httpx.post(url, json=slack_message(payload), timeout=timeout_s, follow_redirects=False)
    return _http_outcome(response, url)


def email_message(settings: dict[str, Any], payload: dict[str, Any]) -> EmailMessage:
    job = (payload.get("job") or {}).get("name", "?")
    msg = EmailMessage()
    msg["Subject"] = f"[datamig] {job}: {payload.get('event')}"
    msg["From"] = settings["sender"]
    msg["To"] = ", ".join(settings["to"])
    msg["Message-ID"] = f"<{payload.get('idempotency_key')}@datamig>"  # the same on every attempt
    msg.set_content(payload.get("text", ""))
    return msg


def _email(settings: dict[str, Any], secret: str | None, payload: dict[str, Any], *, timeout_s: float) -> Outcome:
    msg = email_message(settings, payload)
    with smtplib.SMTP(settings["host"], int(settings.get("port") or 25), timeout=timeout_s) as smtp:
        if settings.get("starttls"):
            smtp.starttls(context=ssl.create_default_context())
        if settings.get("username"):
            smtp.login(settings["username"], secret or "")
        refused = smtp.send_message(msg)
    if refused:
        return Outcome(False, None, _clean(f"recipients refused: {sorted(refused)}", secret), retry=False)
    return Outcome(True, 250, "accepted by the SMTP server")
