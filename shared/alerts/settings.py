"""Settings of alert delivery (``DM_ALERT_*``, ``DM_PUBLIC_URL``); the README lists them."""
from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_POLL_S = 2.0
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_RETRY_BASE_S = 5.0
DEFAULT_RETRY_MAX_S = 600.0
DEFAULT_MAX_ATTEMPTS = 10


class AlertSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DM_", extra="ignore")

    public_url: str = Field("", description="Base URL of the web page in links; empty = http://DM_API_HOST:DM_API_PORT")
    alert_delivery: bool = Field(True, description="This API process delivers notifications (DM_ALERT_DELIVERY).")
    alert_poll_s: float = Field(DEFAULT_POLL_S, gt=0, description="How often pending notifications are looked for.")
    alert_timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, le=300, description="Per attempt (HTTP or SMTP).")
    alert_retry_base_s: float = Field(DEFAULT_RETRY_BASE_S, ge=0, description="Backoff after the first failed "
                                                                              "attempt; doubles per attempt.")
    alert_retry_max_s: float = Field(DEFAULT_RETRY_MAX_S, ge=0, description="Longest backoff between attempts.")
    alert_max_attempts: int = Field(DEFAULT_MAX_ATTEMPTS, ge=1, le=100, description="Attempts before giving up.")

    def lease_s(self) -> float:
        """How long a claimed notification stays with its deliverer (then another may take it)."""
        return 2 * self.alert_timeout_s + 10

    def link_base(self, *, api_host: str, api_port: int) -> str:
        return self.public_url or f"http://{api_host}:{api_port}"


def load_alert_settings(**overrides: object) -> AlertSettings:
    return AlertSettings(**overrides)  # type: ignore[arg-type]
