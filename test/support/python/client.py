"""Scripted `websockets` client: connects to argv[1] and runs the steps in argv[2]
(or, when argv[2] is "-", in stdin, for lists longer than one argument may be).

Written for websockets 10.x (Debian bookworm's python3-websockets) and its asyncio API;
run it with /usr/bin/python3.

Steps (a JSON array, executed in order, each bounded by STEP_TIMEOUT seconds):
  {"op": "send", "text": str} | {"op": "send", "base64": str}
  {"op": "send", "pattern": "text"|"binary", "size": int}
  {"op": "send", "fragments": [str, ...]} | {"op": "send", "fragments_base64": [str, ...]}
                                       one message, one frame per element
  {"op": "recv"}                       -> {"event": "message", ...describe()}
  {"op": "ping", "data": str}          -> {"event": "pong", "data": str} once answered
  {"op": "close", "code": int, "reason": str}
  {"op": "wait_closed"}
Both close steps report {"event": "closed", "sent": ..., "received": ...}: the close
frames as this client sent and received them (null when absent).

Environment: SUBPROTOCOLS (comma-separated offer), COMPRESSION ("none" disables
permessage-deflate), DEFLATE (a JSON object of ClientPerMessageDeflateFactory arguments,
e.g. {"server_no_context_takeover": true, "client_max_window_bits": 10}, for the offer
instead of the default one), STEP_TIMEOUT (seconds, default 5).
"""

import asyncio
import base64
import json
import os
import sys

import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from peer_report import close_frame, deflate_arguments, describe, emit, parse_subprotocols, pattern

STEP_TIMEOUT = float(os.environ.get("STEP_TIMEOUT", "5"))


def report_closed(ws):
    emit(event="closed", sent=close_frame(ws.close_sent), received=close_frame(ws.close_rcvd))


async def run_step(ws, step):
    op = step["op"]
    if op == "send":
        if "text" in step:
            await ws.send(step["text"])
        elif "base64" in step:
            await ws.send(base64.b64decode(step["base64"]))
        elif "fragments" in step:
            await ws.send(iter(step["fragments"]))
        elif "fragments_base64" in step:
            await ws.send(iter([base64.b64decode(part) for part in step["fragments_base64"]]))
        else:
            await ws.send(pattern(step["pattern"], step["size"]))
    elif op == "recv":
        emit(event="message", **describe(await ws.recv()))
    elif op == "ping":
        waiter = await ws.ping(step["data"])
        await waiter
        emit(event="pong", data=step["data"])
    elif op == "close":
        await ws.close(step["code"], step.get("reason", ""))
        report_closed(ws)
    elif op == "wait_closed":
        await ws.wait_closed()
        report_closed(ws)
    else:
        raise ValueError(f"unknown step {op!r}")


async def main(url, steps):
    compression = None if os.environ.get("COMPRESSION") == "none" else "deflate"
    deflate = deflate_arguments(os.environ.get("DEFLATE"))
    ws = await asyncio.wait_for(
        websockets.connect(
            url,
            subprotocols=parse_subprotocols(os.environ.get("SUBPROTOCOLS")) or None,
            compression=compression,
            extensions=None if deflate is None else [ClientPerMessageDeflateFactory(**deflate)],
            ping_interval=None,
            max_size=None,
            close_timeout=STEP_TIMEOUT,
        ),
        STEP_TIMEOUT,
    )
    emit(
        event="open",
        subprotocol=ws.subprotocol,
        extensions=ws.response_headers.get("Sec-WebSocket-Extensions"),
    )
    try:
        for index, step in enumerate(steps):
            try:
                await asyncio.wait_for(run_step(ws, step), STEP_TIMEOUT)
            except Exception as error:
                raise RuntimeError(f"step {index} {json.dumps(step)[:200]}: {error!r}") from error
    finally:
        # A script that stops early must not leave the peer waiting for a close.
        if ws.transport is not None:
            ws.transport.abort()


if __name__ == "__main__":
    try:
        steps = sys.stdin.read() if sys.argv[2] == "-" else sys.argv[2]
        asyncio.run(main(sys.argv[1], json.loads(steps)))
    except Exception as error:  # reported, not raised: the test reads stdout only
        emit(event="error", error=f"{type(error).__name__}: {error}")
        sys.exit(1)
    emit(event="done")
