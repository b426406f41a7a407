"""JSON on the server's hot paths (every step's request and reply).

orjson encodes a step's reply about ten times faster than the standard library
and decodes a request about four times faster. The standard library stays the
reference: what the server accepts, the values it reads and the messages of its
400 errors do not change.

* Reading, orjson is used only where it provably agrees with ``json.loads``:
  not on a document with 19 digits in a row (orjson reads an integer beyond 64
  bits as a float) or with more than `MAX_BRACKETS` brackets (``json`` refuses
  nesting ~1000 deep; some orjson versions have no depth limit at all and
  overflow the C stack). Anything orjson refuses (NaN and Infinity literals,
  overflowing floats, lone surrogates, non-UTF-8 bytes, syntax errors) goes to
  ``json.loads``, which reads it or raises its own error.
* Writing, anything orjson refuses (numpy scalars, integers beyond 64 bits,
  non-string keys, lone surrogates) goes to ``json.dumps``. The one difference:
  orjson writes a NaN or infinite float as ``null`` where ``json`` wrote the
  non-standard ``NaN`` / ``Infinity`` (FastAPI's own responses already wrote
  ``null``).

Without orjson installed (the ``[server]`` extra installs it) everything goes to
the standard library.

`json_safe` and `validation_errors` make an error's ``detail`` encodable as
strict JSON whatever the request held, so that a 4xx never becomes a 500.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - the [server] extra installs it
    orjson = None  # type: ignore[assignment]

MAX_BRACKETS = 256  # "[" plus "{" in a document orjson may read: nesting stays shallow
_LONG_DIGITS = re.compile(r"\d{19}")  # 2**63 has 19 digits
_LONG_DIGITS_BYTES = re.compile(rb"\d{19}")


def _orjson_agrees(data: str | bytes) -> bool:
    """Whether orjson reads ``data`` as ``json.loads`` does (if it reads it at all)."""
    if isinstance(data, str):
        brackets = data.count("[") + data.count("{")
        return brackets <= MAX_BRACKETS and _LONG_DIGITS.search(data) is None
    brackets = data.count(b"[") + data.count(b"{")
    return brackets <= MAX_BRACKETS and _LONG_DIGITS_BYTES.search(data) is None


def loads(data: str | bytes) -> Any:
    """Parse a JSON document; raises ``ValueError`` (``json.JSONDecodeError``) or
    ``RecursionError`` exactly as ``json.loads`` would."""
    if orjson is not None and _orjson_agrees(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # json.loads decides: it accepts a little more, and words the error
    return json.loads(data)


def dumps_bytes(obj: Any) -> bytes:
    """``obj`` as compact UTF-8 JSON."""
    if orjson is not None:
        try:
            return orjson.dumps(obj)
        except TypeError:
            pass  # a value orjson does not take: json.dumps writes it (or raises) as before
    return json.dumps(obj, separators=(",", ":")).encode()


def dumps(obj: Any) -> str:
    """``obj`` as compact JSON text (for a WebSocket text frame)."""
    return dumps_bytes(obj).decode()


def json_safe(value: Any) -> Any:
    """``value`` made strict-JSON encodable, for an error's ``detail``: an
    error may echo what the client sent (a NaN, an Infinity) or carry objects
    (an exception in a validation error's ``ctx``), and an encoder that fails
    on them would turn a 4xx into a 500. Non-finite floats become None, other
    values that JSON lacks become their ``str``."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return str(value)


def validation_errors(errors: Any) -> Any:
    """Pydantic's ``errors()`` as an error ``detail``: each error's ``loc``,
    ``msg`` and ``type`` (never the ``input`` it echoes, nor its ``ctx``);
    anything else as `json_safe` makes it."""
    if isinstance(errors, list) and all(isinstance(e, dict) and "msg" in e for e in errors):
        return [
            {
                "loc": json_safe(list(e.get("loc", ()))),
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in errors
        ]
    return json_safe(errors)
