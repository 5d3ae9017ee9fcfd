"""`websockets` echo server on 127.0.0.1, an OS-chosen port; prints "READY <port>".

Written for websockets 10.x (Debian bookworm's python3-websockets) and its asyncio API;
run it with /usr/bin/python3.

The request path picks the behaviour for that connection:
  /echo...                          echo every message back with its own type
  /close?code=C&reason=R            close at once with C and R
  /ping?data=D                      ping with D, report the pong, then echo
Per connection it reports, as JSON lines tagged with the path:
  {"event": "open", "subprotocol", "offered_extensions", "extensions"}
  {"event": "pong", "data"}  and  {"event": "closed", "sent", "received"}
(the close frames as this server sent and received them).

Environment: SUBPROTOCOLS (supported, in preference order), FORCE_SUBPROTOCOL (answer
with this name whatever the client offered, to test client-side validation),
COMPRESSION ("none" disables permessage-deflate), DEFLATE (a JSON object of
ServerPerMessageDeflateFactory arguments, e.g. {"server_max_window_bits": 10}, instead of
the default configuration), STEP_TIMEOUT (seconds, default 5).
The server exits when stdin closes, so it never outlives the test that spawned it.
"""

import asyncio
import os
import sys
from urllib.parse import parse_qs, urlsplit

import websockets
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

from peer_report import close_frame, deflate_arguments, emit, parse_subprotocols

STEP_TIMEOUT = float(os.environ.get("STEP_TIMEOUT", "5"))
SUPPORTED = parse_subprotocols(os.environ.get("SUBPROTOCOLS"))
FORCED = os.environ.get("FORCE_SUBPROTOCOL")


def select_subprotocol(offered, _supported):
    """Server preference order, restricted to what the client offered."""
    if FORCED:
        return FORCED
    return next((p for p in SUPPORTED if p in offered), None)


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass  # any close code ends the echo; the "closed" line reports it


async def handle(ws):
    path = ws.path
    query = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
    route = urlsplit(path).path
    emit(
        event="open",
        path=path,
        subprotocol=ws.subprotocol,
        offered_extensions=ws.request_headers.get("Sec-WebSocket-Extensions"),
        extensions=ws.response_headers.get("Sec-WebSocket-Extensions"),
    )
    try:
        if route == "/close":
            await ws.close(int(query["code"]), query.get("reason", ""))
        elif route == "/ping":
            waiter = await ws.ping(query.get("data", ""))
            await asyncio.wait_for(waiter, STEP_TIMEOUT)
            emit(event="pong", path=path, data=query.get("data", ""))
            await echo(ws)
        else:
            await echo(ws)
    except Exception as error:
        emit(event="error", path=path, error=f"{type(error).__name__}: {error}")
    await ws.wait_closed()
    emit(event="closed", path=path, sent=close_frame(ws.close_sent), received=close_frame(ws.close_rcvd))


async def until_stdin_closes():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass


async def main():
    compression = None if os.environ.get("COMPRESSION") == "none" else "deflate"
    deflate = deflate_arguments(os.environ.get("DEFLATE"))
    async with websockets.serve(
        handle,
        "127.0.0.1",
        0,
        subprotocols=SUPPORTED or None,
        select_subprotocol=select_subprotocol,
        compression=compression,
        extensions=None if deflate is None else [ServerPerMessageDeflateFactory(**deflate)],
        ping_interval=None,
        max_size=None,
        close_timeout=STEP_TIMEOUT,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"READY {port}", flush=True)
        await until_stdin_closes()


if __name__ == "__main__":
    asyncio.run(main())
