"""Channel shapes and their validation: the settings each kind needs, and the secret.

- ``webhook``: settings ``{url, headers?}``; secret = the HMAC-SHA256 signing key (required,
  at least 16 characters).
- ``slack``: settings ``{}``; secret = the incoming-webhook URL (it is a credential).
- ``email``: settings ``{host, port=25, starttls=false, username?, sender, to: [addresses]}``;
  secret = the SMTP password (optional).

Secrets are encrypted with the project key (shared/secrets.py) and never returned.
"""
from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.jobspec import NoNulModel, NonEmptyName

MIN_SIGNING_SECRET = 16


class ChannelKind(str, Enum):
    webhook = "webhook"
    slack = "slack"
    email = "email"


def _http_url(v: str) -> str:
    if not v.startswith(("http://", "https://")) or len(v) < 10:
        raise ValueError("must be an http:// or https:// URL")
    return v


class WebhookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(..., max_length=2000)
    headers: dict[str, str] = Field(default_factory=dict, max_length=20)

    _url = field_validator("url")(_http_url)


class SlackSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmailSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = Field(..., min_length=1, max_length=255)
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = False
    username: str | None = Field(None, max_length=255)
    sender: str = Field(..., max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    to: list[str] = Field(..., min_length=1, max_length=50)

    @field_validator("to")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if "@" not in a or any(c.isspace() for c in a) or "," in a]
        if bad:
            raise ValueError(f"not e-mail addresses: {bad}")
        return v


SETTINGS_MODELS: dict[str, type[BaseModel]] = {"webhook": WebhookSettings, "slack": SlackSettings,
                                                "email": EmailSettings}


class ChannelSpec(NoNulModel):
    """A channel as users send it (POST/PUT /api/channels). ``secret`` is write-only."""

    model_config = ConfigDict(extra="forbid")

    name: NonEmptyName
    kind: ChannelKind
    settings: dict[str, Any] = Field(default_factory=dict)
    secret: str | None = Field(None, max_length=4000, description="write-only; omit on update to keep it")


def check_channel(spec: ChannelSpec, *, has_stored_secret: bool) -> tuple[dict[str, Any], list[tuple[list, str]]]:
    """The cleaned settings and the problems found, as (loc, message) pairs."""
    errors: list[tuple[list, str]] = []
    cleaned: dict[str, Any] = {}
    try:
        cleaned = SETTINGS_MODELS[spec.kind.value].model_validate(spec.settings).model_dump(exclude_none=True)
    except ValidationError as exc:
        errors += [(["body", "settings", *e["loc"]], e["msg"].removeprefix("Value error, ")) for e in exc.errors()]
    secret = spec.secret
    if spec.kind is ChannelKind.webhook:
        if secret is None and not has_stored_secret:
            errors.append((["body", "secret"], "a webhook needs a signing secret (HMAC-SHA256 key)"))
        elif secret is not None and len(secret) < MIN_SIGNING_SECRET:
            errors.append((["body", "secret"], f"the signing secret must have at least {MIN_SIGNING_SECRET} characters"))
    if spec.kind is ChannelKind.slack:
        if secret is None and not has_stored_secret:
            errors.append((["body", "secret"], "a Slack channel needs its incoming-webhook URL as its secret"))
        elif secret is not None:
            try:
                _http_url(secret)
            except ValueError as exc:
                errors.append((["body", "secret"], f"the incoming-webhook URL {exc}"))
    return cleaned, errors


def channel_out(row: Any) -> dict[str, Any]:
    """The public shape: never the secret, only whether one is stored."""
    return {"id": row.id, "name": row.name, "kind": row.kind, "settings": dict(row.settings or {}),
            "has_secret": bool(row.secret_enc), "created_at": row.created_at, "updated_at": row.updated_at}
