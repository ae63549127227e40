"""An exact JSON encoding: what goes in comes out, with its type, or it is refused.

Plain JSON turns a tuple into a list, ``{1: "a"}`` into ``{"1": "a"}`` and an enum into
its value, silently. Here the plain JSON types (``str``, ``int``, ``float``, ``bool``,
``None``, ``list``, ``dict`` with ``str`` keys) are written as they are, so other readers
see ordinary JSON, and a few more types are written as a one-key object whose key starts
with ``"\\u0000"``:

=====================  ===============================
``tuple``              ``{"\\u0000t": [...]}``
``set``, ``frozenset``   ``{"\\u0000s": [...]}``, ``{"\\u0000f": [...]}``
``dict`` (other keys)  ``{"\\u0000d": [[key, value], ...]}``
``bytes``              ``{"\\u0000b": "<base64>"}``
``datetime`` & co      ``{"\\u0000T": "<isoformat>"}`` (and ``D``, ``H`` for date, time)
``timedelta``          ``{"\\u0000S": [days, seconds, microseconds]}``
``Decimal``, ``UUID``    ``{"\\u0000N": "1.10"}``, ``{"\\u0000U": "<hex>"}``
=====================  ===============================

A ``dict`` of ``str`` keys that happens to have one key starting with ``"\\u0000"`` is
written in the ``d`` form, so it is never mistaken for a tag. Anything else (an enum,
a subclass of ``str`` or ``int``, an object) is refused with `TypeError`: it would not
come back as it went in. Decoding only builds these types: no code chosen by the bytes
runs, whatever they are.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import uuid

from collections.abc import Callable
from typing import Any


_TAG = "\x00"
_encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False, check_circular=False)


def _items(value: Any) -> list[Any]:
    return [_tagged(item) for item in value]


def _float(value: float) -> float:
    if not math.isfinite(value):
        msg = f"{value!r} has no JSON form"
        raise ValueError(msg)
    return value


def _dict(value: dict[Any, Any]) -> Any:
    plain = all(key.__class__ is str for key in value)
    if plain and not (len(value) == 1 and next(iter(value)).startswith(_TAG)):
        return {key: _tagged(item) for key, item in value.items()}
    return {_TAG + "d": [[_tagged(key), _tagged(item)] for key, item in value.items()]}


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    str: lambda v: v,
    int: lambda v: v,
    bool: lambda v: v,
    type(None): lambda v: v,
    float: _float,
    list: _items,
    dict: _dict,
    tuple: lambda v: {_TAG + "t": _items(v)},
    set: lambda v: {_TAG + "s": _items(v)},
    frozenset: lambda v: {_TAG + "f": _items(v)},
    bytes: lambda v: {_TAG + "b": base64.b64encode(v).decode("ascii")},
    dt.datetime: lambda v: {_TAG + "T": v.isoformat()},
    dt.date: lambda v: {_TAG + "D": v.isoformat()},
    dt.time: lambda v: {_TAG + "H": v.isoformat()},
    dt.timedelta: lambda v: {_TAG + "S": [v.days, v.seconds, v.microseconds]},
    decimal.Decimal: lambda v: {_TAG + "N": str(v)},
    uuid.UUID: lambda v: {_TAG + "U": v.hex},
}


def _tagged(value: Any) -> Any:
    encode = _ENCODERS.get(value.__class__)
    if encode is None:
        name = type(value).__qualname__
        hint = " (store its .value)" if hasattr(type(value), "__members__") else ""
        msg = f"{name} does not round-trip through JSON exactly{hint}"
        raise TypeError(msg)
    return encode(value)


def _date_time(cls: Any) -> Callable[[Any], Any]:
    def decode(text: Any) -> Any:
        return cls.fromisoformat(text)

    return decode


_DECODERS: dict[str, Callable[[Any], Any]] = {
    _TAG + "t": tuple,
    _TAG + "s": set,
    _TAG + "f": frozenset,
    _TAG + "d": dict,
    _TAG + "b": lambda text: base64.b64decode(text.encode("ascii"), validate=True),
    _TAG + "T": _date_time(dt.datetime),
    _TAG + "D": _date_time(dt.date),
    _TAG + "H": _date_time(dt.time),
    _TAG + "S": lambda parts: dt.timedelta(*parts),
    _TAG + "N": decimal.Decimal,
    _TAG + "U": lambda text: uuid.UUID(hex=text),
}


def _untag(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        key = next(iter(obj))
        if key.startswith(_TAG):
            decode = _DECODERS.get(key)
            if decode is None:
                msg = f"unknown tag {key!r}"
                raise ValueError(msg)
            try:
                return decode(obj[key])
            except (TypeError, ValueError, decimal.InvalidOperation) as e:
                msg = f"a malformed {key!r} value"
                raise ValueError(msg) from e
    return obj


def dumps(value: Any) -> bytes:
    """Encode *value* exactly, or raise `TypeError` / `ValueError` naming what cannot be.

    Runtime complexity: `O(n)` in the size of the value, one walk plus `json`'s.
    """
    cls = value.__class__
    if cls is str or cls is int:  # the common scalars skip the walk
        return _encoder.encode(value).encode()
    try:
        return _encoder.encode(_tagged(value)).encode()
    except RecursionError:
        msg = "the value is nested too deeply (or contains itself)"
        raise ValueError(msg) from None


def loads(data: bytes) -> Any:
    """Decode what `dumps` wrote (and any plain JSON); raise `ValueError` on anything else."""
    try:
        return json.loads(data, object_hook=_untag)
    except RecursionError:
        msg = "the JSON is nested too deeply"
        raise ValueError(msg) from None
