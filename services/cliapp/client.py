"""A small HTTP client for the datamig API (httpx), with errors a terminal can show."""
from __future__ import annotations

import os
from typing import Any

import httpx

DEFAULT_API_URL = "http://127.0.0.1:8000"
TIMEOUT_S = 30.0


class CliError(Exception):
    """A failure the command line reports in one line, with its exit code (2 = usage/config)."""

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        self.message = message
        self.exit_code = exit_code
        super().__init__(message)


class ApiError(CliError):
    """The API answered with an error status; ``detail`` is its JSON ``detail`` (if any)."""

    def __init__(self, method: str, path: str, status_code: int, detail: Any) -> None:
        self.method, self.path, self.status_code, self.detail = method, path, status_code, detail
        super().__init__(f"{method} {path}: HTTP {status_code}: {_detail_text(detail)}")


def _detail_text(detail: Any) -> str:
    if isinstance(detail, list):
        return "; ".join(f"{d.get('field') or '.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}"
                         if isinstance(d, dict) else str(d) for d in detail)
    return str(detail)


class ApiClient:
    """JSON over HTTP to ``base_url``. Raises CliError when unreachable, ApiError on 4xx/5xx."""

    def __init__(self, http: httpx.Client, *, base_url: str) -> None:
        self.http = http
        self.base_url = base_url

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "ApiClient":
        env = os.environ if env is None else env
        base_url = (env.get("DM_API_URL") or DEFAULT_API_URL).rstrip("/")
        headers = {"Accept": "application/json"}
        token = env.get("DM_API_TOKEN")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return cls(httpx.Client(base_url=base_url, headers=headers, timeout=TIMEOUT_S), base_url=base_url)

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise CliError(f"cannot reach the datamig API at {self.base_url} (is it running? set DM_API_URL)") from None
        except httpx.TimeoutException:
            raise CliError(f"the datamig API at {self.base_url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise CliError(f"talking to the datamig API at {self.base_url} failed: {exc}") from None
        if response.status_code in (401, 403):
            hint = "set DM_API_TOKEN" if response.status_code == 401 else "the token lacks permission"
            raise CliError(f"{method} {path}: HTTP {response.status_code} ({hint})")
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text.strip()[:500]
            raise ApiError(method, path, response.status_code, detail)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body)
