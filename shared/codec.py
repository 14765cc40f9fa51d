"""The batch codec: msgpack with extension types. Never pickle.

Row values travel as Python objects of a closed set of types: None, bool, int (any
size), float, str, bytes, Decimal, datetime (naive or aware), date, time, timedelta,
UUID, and lists/dicts of those. Anything else is a :class:`TypeError` at encode time,
so a value can never smuggle code through the queue; decoding only builds these types.
"""
from __future__ import annotations

import struct
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgpack

from shared.errors import DecodeError

EXT_DECIMAL = 1
EXT_DATETIME = 2  # naive: iso text; aware: iso text with offset
EXT_DATE = 3
EXT_TIME = 4
EXT_UUID = 5
EXT_TIMEDELTA = 6
EXT_BIGINT = 7
_TD = struct.Struct(">qi")
MAX_MESSAGE_BYTES = 256 * 1024 * 1024


def _default(obj: Any) -> msgpack.ExtType:
    if isinstance(obj, Decimal):
        return msgpack.ExtType(EXT_DECIMAL, str(obj).encode())
    if isinstance(obj, datetime):
        return msgpack.ExtType(EXT_DATETIME, obj.isoformat().encode())
    if isinstance(obj, date):
        return msgpack.ExtType(EXT_DATE, obj.isoformat().encode())
    if isinstance(obj, time):
        return msgpack.ExtType(EXT_TIME, obj.isoformat().encode())
    if isinstance(obj, uuid.UUID):
        return msgpack.ExtType(EXT_UUID, obj.bytes)
    if isinstance(obj, timedelta):
        return msgpack.ExtType(EXT_TIMEDELTA, _TD.pack(obj.days * 86400 + obj.seconds, obj.microseconds))
    if isinstance(obj, int):  # beyond 64 bits
        return msgpack.ExtType(EXT_BIGINT, str(obj).encode())
    if isinstance(obj, (memoryview, bytearray)):
        return bytes(obj)  # type: ignore[return-value]
    if isinstance(obj, (tuple, set, frozenset)):
        return list(obj)  # type: ignore[return-value]
    raise TypeError(f"cannot encode a value of type {type(obj).__name__}")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_DECIMAL:
        return Decimal(data.decode())
    if code == EXT_DATETIME:
        return datetime.fromisoformat(data.decode())
    if code == EXT_DATE:
        return date.fromisoformat(data.decode())
    if code == EXT_TIME:
        return time.fromisoformat(data.decode())
    if code == EXT_UUID:
        return uuid.UUID(bytes=data)
    if code == EXT_TIMEDELTA:
        seconds, micros = _TD.unpack(data)
        return timedelta(seconds=seconds, microseconds=micros)
    if code == EXT_BIGINT:
        return int(data.decode())
    raise ValueError(f"unknown extension type {code}")


def encode(obj: Any) -> bytes:
    """Encode a message body. Raises :class:`TypeError` for an unsupported value."""
    return msgpack.packb(obj, default=_default, use_bin_type=True, datetime=False)


def decode(raw: bytes) -> Any:
    """Decode a message body. Raises :class:`DecodeError` (with the raw bytes) when malformed."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise DecodeError(f"message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}", raw[:256])
    try:
        return msgpack.unpackb(
            raw, ext_hook=_ext_hook, raw=False, strict_map_key=False, timestamp=0, use_list=True
        )
    except Exception as exc:  # noqa: BLE001 - msgpack raises many kinds
        raise DecodeError(f"undecodable message: {exc}", raw[:256]) from None


UTC = timezone.utc
