"""Header values both transports carry unchanged (the AMQP field-table types pika decodes
back to the same Python values): str, bytes, bool, int (64-bit), None, and dicts (str keys)
and lists of those. Floats are not among them: send them as strings."""
from __future__ import annotations

from typing import Any

INT64 = (-(2**63), 2**63 - 1)


def check_headers(headers: dict | None) -> None:
    """Raises ValueError when a header value has a type the transports cannot carry."""
    if headers:
        _check(headers, "headers")


def _check(value: Any, path: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path}: header keys must be str, got {key!r}")
            _check(item, f"{path}[{key!r}]")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
    elif isinstance(value, int) and not isinstance(value, bool):
        if not INT64[0] <= value <= INT64[1]:
            raise ValueError(f"{path}: {value} does not fit in 64 bits")
    elif value is not None and not isinstance(value, (str, bytes, bool)):
        raise ValueError(f"{path}: unsupported header value {value!r} ({type(value).__name__}); "
                         "use str, bytes, bool, int, None, dict or list")
