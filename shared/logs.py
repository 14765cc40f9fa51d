"""Logging set-up: plain text or JSON lines, secrets masked, job and execution ids attached."""
from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar

from shared.connections import mask_secrets_in_text

execution_context: ContextVar[dict] = ContextVar("execution_context", default={})


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = execution_context.get()
        record.job_id = ctx.get("job_id")
        record.execution_id = ctx.get("execution_id")
        return True


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if getattr(record, "execution_id", None):
            text += f" [job={record.job_id} execution={record.execution_id}]"
        return mask_secrets_in_text(text)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "service": _SERVICE,
            "message": mask_secrets_in_text(record.getMessage()),
        }
        for key in ("job_id", "execution_id"):
            if getattr(record, key, None) is not None:
                out[key] = getattr(record, key)
        if record.exc_info:
            out["exc"] = mask_secrets_in_text(self.formatException(record.exc_info))
        return json.dumps(out, default=str)


_SERVICE = "datamig"


def configure_logging(level: str = "INFO", *, json_lines: bool = False, service: str = "datamig") -> None:
    """Configure the root logger once per process."""
    global _SERVICE
    _SERVICE = service
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(_JsonFormatter() if json_lines else
                         _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # our transport logs connection trouble once, clearly
