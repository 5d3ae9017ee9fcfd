// The heartbeat (src/websocket/heartbeat.ts): a peer that has been quiet for `interval` is pinged, and
// one that then sends nothing at all for `timeout` is dropped (close 1006). Any bytes from the peer count
// as a sign of life, not only a pong. Both roles: the server's option covers all its clients, the
// client's covers its one server.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket, WebSocketServer, type CloseEvent } from '../src/index.js';
import { Op } from './support/rawclient.js';
import { rawPair, type RawPeer } from './support/raw-peer.js';
import {
  client, collectMessages, connectPair, nextClose, opened, readRequestHead, startEchoServer, startServer,
  startTcpServer, switchingProtocols, withTimeout,
} from './support/websocket-harness.js';

const OPTIONS = { timeout: 30_000 };
const HEARTBEAT = { interval: 200, timeout: 200 };
// A dead peer is noticed after interval + timeout plus one check step (a quarter of the shorter period);
// the rest is slack for a loaded machine.
const DROP_WITHIN_MS = 1500;
// Long enough for several heartbeat rounds: a live peer must survive all of them.
const OBSERVE_MS = 1200;

/** Every close event `ws` fires from now on. */
function recordCloses(ws: WebSocket): CloseEvent[] {
  const closes: CloseEvent[] = [];
  ws.on('close', (ev) => closes.push(ev));
  return closes;
}


/** Sends a small text frame every `everyMs` until stopped; never answers anything. */
function chatter(peer: RawPeer, everyMs: number): () => void {
  let n = 0;
  const timer = setInterval(() => peer.send(Op.Text, `still here ${n++}`), everyMs);
  return () => clearInterval(timer);
}

describe('server heartbeat', OPTIONS, () => {
  test('a peer that never reads nor answers pings is dropped: one close event, 1006, gone from clients', async (t) => {
    const started = await startServer(t, { heartbeat: HEARTBEAT, closeTimeout: 100 });
    const { peer, server } = await rawPair(t, started);
    const closes = recordCloses(server);
    assert.ok(started.wss.clients.has(server));

    await nextClose(server, DROP_WITHIN_MS);
    // A paused socket sees the end of TCP only once it reads again.
    peer.read();
    await peer.waitClosed();
    // A second close event, if any, would come within a heartbeat round or two.
    await sleep(HEARTBEAT.interval * 2);
    assert.equal(closes.length, 1);
    assert.deepEqual([closes[0]!.code, closes[0]!.wasClean], [1006, false]);
    assert.equal(server.readyState, WebSocket.CLOSED);
    assert.equal(started.wss.clients.size, 0);
  });

  test('our WebSocket answers the pings by itself and stays connected', async (t) => {
    const started = await startEchoServer(t, { heartbeat: HEARTBEAT });
    const pair = await connectPair(t, started);
    let pings = 0;
    pair.client.on('ping', () => pings++);
    const closes = recordCloses(pair.server);
    await sleep(OBSERVE_MS);
    assert.equal(closes.length, 0);
    assert.ok(pings >= 1, 'the idle client was pinged');
    assert.ok(started.wss.clients.has(pair.server));
    const echo = collectMessages(pair.client, 1);
    pair.client.send('alive');
    assert.equal((await echo)[0]!.data, 'alive');
  });

  test('a peer that keeps sending data but never pongs is not dropped: any data counts as alive', async (t) => {
    const started = await startServer(t, { heartbeat: HEARTBEAT, closeTimeout: 100 });
    const { peer, server } = await rawPair(t, started);
    const closes = recordCloses(server);
    const stop = chatter(peer, HEARTBEAT.interval / 2);
    t.after(stop);
    await sleep(OBSERVE_MS);
    stop();
    assert.equal(closes.length, 0);
    assert.equal(server.readyState, WebSocket.OPEN);
  });

  test('a pinged peer that answers with data instead of a pong is not dropped', async (t) => {
    // Data every 300 ms: the peer is quiet long enough to be pinged, and its next message comes before
    // the timeout runs out.
    const heartbeat = { interval: 200, timeout: 600 };
    const started = await startServer(t, { heartbeat, closeTimeout: 100 });
    const { peer, server } = await rawPair(t, started);
    peer.read();
    const closes = recordCloses(server);
    const stop = chatter(peer, 300);
    t.after(stop);
    await sleep(OBSERVE_MS + 300);
    stop();
    assert.ok(peer.frames.some((f) => f.opcode === Op.Ping), 'the peer was pinged');
    assert.equal(closes.length, 0);
    assert.equal(server.readyState, WebSocket.OPEN);
  });

  test('the drop of one peer leaves the others alone', async (t) => {
    const started = await startEchoServer(t, { heartbeat: HEARTBEAT });
    const good = await connectPair(t, started);
    const { server } = await rawPair(t, started);
    await nextClose(server, DROP_WITHIN_MS);
    assert.equal(good.server.readyState, WebSocket.OPEN);
    assert.deepEqual([...started.wss.clients], [good.server]);
  });

  test('a connection paused by its own application (async iterator not pulling) is not taken for dead', {
  }, async (t) => {
    const started = await startServer(t, { heartbeat: HEARTBEAT, closeTimeout: 100 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    t.after(() => release());
    started.wss.on('connection', (ws) => {
      void (async () => {
        for await (const _ of ws) await gate;
      })();
    });
    const pair = await connectPair(t, started);
    const closes = recordCloses(pair.server);
    // Far more than the iterator buffers, so it stops reading the socket.
    for (let i = 0; i < 200; i++) pair.client.send(`message ${i}`);
    await sleep(OBSERVE_MS);
    assert.equal(closes.length, 0, `closed with ${closes[0]?.code}`);
    assert.equal(pair.server.readyState, WebSocket.OPEN);
  });

  test('invalid heartbeat periods are a RangeError', () => {
    assert.throws(() => new WebSocketServer({ noServer: true, heartbeat: { interval: 0 } }), RangeError);
    assert.throws(() => new WebSocketServer({ noServer: true, heartbeat: { timeout: -1 } }), RangeError);
  });
});

describe('client heartbeat', OPTIONS, () => {
  test('a server that completes the handshake and then goes silent is dropped with 1006', async (t) => {
    const serverSockets: net.Socket[] = [];
    const port = await startTcpServer(t, (socket) => {
      serverSockets.push(socket);
      void readRequestHead(socket).then((head) => {
        socket.write(switchingProtocols(head));
        // From here on: no reads, no writes, no FIN.
        socket.pause();
      }, () => socket.destroy());
    });
    const ws = client(t, `ws://127.0.0.1:${port}/`, undefined, { heartbeat: HEARTBEAT });
    const closes = recordCloses(ws);
    await opened(ws);
    await nextClose(ws, DROP_WITHIN_MS);
    await sleep(HEARTBEAT.interval * 2);
    assert.equal(closes.length, 1);
    assert.deepEqual([closes[0]!.code, closes[0]!.wasClean], [1006, false]);
    assert.equal(serverSockets.length, 1);
    const serverSocket = serverSockets[0]!;
    const ended = new Promise<void>((resolve) => serverSocket.once('close', () => resolve()));
    // The silent server notices the end of TCP once it reads again.
    serverSocket.resume();
    await withTimeout(ended, 'the TCP connection to end on the server side');
  });

  test('a server that answers the pings keeps the client connected', async (t) => {
    const started = await startEchoServer(t);
    const ws = client(t, started.url, undefined, { heartbeat: HEARTBEAT });
    let pongs = 0;
    ws.on('pong', () => pongs++);
    const closes = recordCloses(ws);
    await opened(ws);
    await sleep(OBSERVE_MS);
    assert.equal(closes.length, 0);
    assert.ok(pongs >= 1, 'the client pinged the quiet server');
    assert.equal(ws.readyState, WebSocket.OPEN);
  });
});
