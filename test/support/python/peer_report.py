"""JSON-lines reporting shared by the interop peers.

Both Python peers talk to the Node test over stdout only, one JSON object per
line, flushed immediately so the test never waits on a buffered pipe.
"""

import base64
import hashlib
import json
import math
import sys

# Payloads up to this size are reported verbatim so a failing test can show
# exactly what came back; bigger ones are compared by length and digest.
INLINE_LIMIT = 1024

# Mixes 1-, 2-, 3- and 4-byte UTF-8 sequences so large text messages split
# code points across frames and TCP reads.
TEXT_UNIT = "a\u00e9\u20ac\U0001F600"
TEXT_UNIT_BYTES = 10


def emit(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def describe(message):
    """Summarise a received message the same way the Node side does."""
    if isinstance(message, str):
        raw = message.encode("utf-8")
        summary = {"type": "text", "bytes": len(raw)}
        if len(raw) <= INLINE_LIMIT:
            summary["text"] = message
    else:
        raw = bytes(message)
        summary = {"type": "binary", "bytes": len(raw)}
        if len(raw) <= INLINE_LIMIT:
            summary["base64"] = base64.b64encode(raw).decode("ascii")
    summary["sha256"] = hashlib.sha256(raw).hexdigest()
    return summary


def pattern(kind, size):
    """Deterministic large payload, regenerated identically by the Node side."""
    if kind == "binary":
        return bytes(i % 251 for i in range(size))
    return TEXT_UNIT * math.ceil(size / TEXT_UNIT_BYTES)


def close_frame(close):
    if close is None:
        return None
    return {"code": close.code, "reason": close.reason}


def parse_subprotocols(value):
    return [p for p in (value or "").split(",") if p]


def deflate_arguments(value):
    """The permessage-deflate factory arguments in DEFLATE (a JSON object), or None."""
    return None if not value else json.loads(value)
