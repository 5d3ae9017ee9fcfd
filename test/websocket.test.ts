// The WebSocket class through its public API, in process: a duplex client against a duplex server, or
// against a bare TCP peer where the test needs one that misbehaves.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { Blob } from 'node:buffer';
import { WebSocket, type ErrorEvent, type MessageEvent } from '../src/index.js';
import { RawClient } from './support/rawclient.js';
import {
  client, collectMessages, connectPair, delay, freePort, isDomException, nextClose, nextEvent, nextMessage,
  uncaughtExceptions, opened, portOf, readRequestHead, startEchoServer, startServer, startTcpServer,
  switchingProtocols, withTimeout,
} from './support/websocket-harness.js';

const { CONNECTING, OPEN, CLOSING, CLOSED } = WebSocket;

describe('WebSocket state and attributes', { timeout: 30_000 }, () => {
  test('the readyState constants are on the class and on instances', async (t) => {
    assert.deepEqual([WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED], [0, 1, 2, 3]);
    const { url } = await startServer(t);
    const ws = client(t, url);
    assert.deepEqual([ws.CONNECTING, ws.OPEN, ws.CLOSING, ws.CLOSED], [0, 1, 2, 3]);
    ws.close();
    await nextClose(ws);
  });

  test('readyState goes CONNECTING, OPEN, CLOSING, CLOSED; the close event sees CLOSED', async (t) => {
    const { url } = await startServer(t);
    const ws = client(t, url);
    const states = [ws.readyState];
    await opened(ws);
    states.push(ws.readyState);
    ws.close(1000);
    states.push(ws.readyState);
    let inListener = -1;
    ws.onclose = () => (inListener = ws.readyState);
    await nextClose(ws);
    states.push(ws.readyState);
    assert.deepEqual(states, [CONNECTING, OPEN, CLOSING, CLOSED]);
    assert.equal(inListener, CLOSED);
  });

  test('the server end is OPEN in the connection event and CLOSED after its close event', async (t) => {
    const started = await startServer(t);
    const { client: ws, server } = await connectPair(t, started);
    assert.equal(server.readyState, OPEN);
    const serverClosed = nextClose(server);
    ws.close();
    await serverClosed;
    assert.equal(server.readyState, CLOSED);
  });

  test('url is the normalized href; http: means ws:; the server sees the path and query', async (t) => {
    const started = await startServer(t);
    const paths: string[] = [];
    started.wss.on('connection', (_ws, req) => paths.push(req.url ?? ''));
    const cases: Array<[string | URL, string]> = [
      [`WS://127.0.0.1:${started.port}`, `ws://127.0.0.1:${started.port}/`],
      [`ws://127.0.0.1:${started.port}/a/../b?x=1`, `ws://127.0.0.1:${started.port}/b?x=1`],
      [`http://127.0.0.1:${started.port}/h`, `ws://127.0.0.1:${started.port}/h`],
      [new URL(`ws://127.0.0.1:${started.port}/u`), `ws://127.0.0.1:${started.port}/u`],
    ];
    for (const [input, href] of cases) {
      const ws = client(t, input);
      assert.equal(ws.url, href);
      await opened(ws);
      assert.equal(ws.url, href);
      ws.close();
      await nextClose(ws);
    }
    assert.deepEqual(paths, ['/', '/b?x=1', '/h', '/u']);
  });

  test('protocol and extensions are empty strings when nothing was negotiated', async (t) => {
    const started = await startServer(t);
    const ws = client(t, started.url);
    assert.equal(ws.protocol, '');
    assert.equal(ws.extensions, '');
    await opened(ws);
    assert.equal(ws.protocol, '');
    assert.equal(ws.extensions, '');
    assert.equal(ws.binaryType, 'nodebuffer');
  });

  test('an invalid binaryType is ignored, as the WebIDL enum attribute is in the browser', {
  }, async (t) => {
    const started = await startServer(t);
    const ws = client(t, started.url);
    ws.binaryType = 'arraybuffer';
    (ws as { binaryType: string }).binaryType = 'bogus';
    assert.equal(ws.binaryType, 'arraybuffer');
  });
});

describe('binaryType', { timeout: 30_000 }, () => {
  test('binary data arrives as Buffer, ArrayBuffer or Blob; text is always a string', async (t) => {
    const started = await startServer(t);
    const bytes = Buffer.from([1, 2, 3, 250]);
    started.wss.on('connection', (ws) => ws.on('message', () => {
      ws.send(bytes);
      ws.send('text');
    }));
    const ws = client(t, started.url);
    await opened(ws);

    const receive = async (type: 'nodebuffer' | 'arraybuffer' | 'blob') => {
      ws.binaryType = type;
      const messages = collectMessages(ws, 2);
      ws.send('go');
      return messages;
    };

    const [asBuffer, text1] = await receive('nodebuffer');
    assert.ok(Buffer.isBuffer(asBuffer!.data));
    assert.deepEqual(asBuffer!.data, bytes);
    assert.equal(asBuffer!.isBinary, true);
    assert.equal(text1!.data, 'text');
    assert.equal(text1!.isBinary, false);

    const [asArrayBuffer, text2] = await receive('arraybuffer');
    assert.ok(asArrayBuffer!.data instanceof ArrayBuffer);
    assert.deepEqual(Buffer.from(asArrayBuffer!.data), bytes);
    assert.equal(text2!.data, 'text');

    const [asBlob, text3] = await receive('blob');
    assert.ok(asBlob!.data instanceof Blob);
    assert.equal(asBlob!.data.size, bytes.length);
    assert.deepEqual(Buffer.from(await asBlob!.data.arrayBuffer()), bytes);
    assert.equal(text3!.data, 'text');
  });

  test('the binaryType in force when a message arrives decides its type, not the one at first access', async (t) => {
    const started = await startServer(t);
    started.wss.on('connection', (ws) => ws.send(Buffer.from([7])));
    const ws = client(t, started.url);
    ws.binaryType = 'arraybuffer';
    const ev = await nextMessage(ws);
    ws.binaryType = 'nodebuffer';
    assert.ok(ev.data instanceof ArrayBuffer);
  });
});

describe('send', { timeout: 30_000 }, () => {
  test('strings, Buffers, views (only their bytes), ArrayBuffers, DataViews and Blobs, in order', async (t) => {
    const started = await startServer(t);
    const { client: ws, server } = await connectPair(t, started);
    const received = collectMessages(server, 9);

    const backing = new Uint8Array([9, 9, 3, 4, 5, 9, 9]);
    ws.send('text');
    ws.send(Buffer.from([1, 2]));
    ws.send(backing.subarray(2, 5));
    ws.send(new Uint8Array([6, 7]).buffer);
    ws.send(new DataView(new Uint8Array([0, 8, 9, 0]).buffer, 1, 2));
    ws.send(new Blob([Buffer.from([10, 11])]));
    ws.send('after the blob');
    ws.send('and then this');
    ws.send(Buffer.from('bytes sent as text ✓'), { binary: false });

    const got = (await received).map((ev) => [ev.isBinary, ev.isBinary ? [...ev.rawData] : ev.data]);
    assert.deepEqual(got, [
      [false, 'text'],
      [true, [1, 2]],
      [true, [3, 4, 5]],
      [true, [6, 7]],
      [true, [8, 9]],
      [true, [10, 11]],
      [false, 'after the blob'],
      [false, 'and then this'],
      [false, 'bytes sent as text ✓'],
    ]);
  });

  test('the server sends the same kinds of data to the client', async (t) => {
    const started = await startServer(t);
    const { client: ws, server } = await connectPair(t, started);
    const received = collectMessages(ws, 4);
    server.send(new Uint8Array([0, 1, 2, 3]).subarray(1, 3));
    server.send(new DataView(new Uint8Array([5, 6, 7]).buffer, 2));
    server.send(new Blob(['blob text']));
    server.send('done');
    const got = (await received).map((ev) => [ev.isBinary, ev.isBinary ? [...ev.rawData] : ev.data]);
    assert.deepEqual(got, [[true, [1, 2]], [true, [7]], [true, [...Buffer.from('blob text')]], [false, 'done']]);
  });

  test('masking on the client does not change the caller\'s buffer', async (t) => {
    const started = await startEchoServer(t);
    const ws = client(t, started.url);
    await opened(ws);
    const data = Buffer.from('unchanged after send');
    const copy = Buffer.from(data);
    const echoed = nextMessage(ws);
    ws.send(data);
    assert.deepEqual((await echoed).rawData, copy);
    assert.deepEqual(data, copy);
  });

  test('send and ping while CONNECTING throw InvalidStateError', async (t) => {
    const { url } = await startServer(t);
    const ws = client(t, url);
    assert.throws(() => ws.send('early'), isDomException('InvalidStateError'));
    assert.throws(() => ws.send(new Blob(['early'])), isDomException('InvalidStateError'));
    assert.throws(() => ws.ping(), isDomException('InvalidStateError'));
    assert.throws(() => ws.pong(), isDomException('InvalidStateError'));
    ws.close();
    await nextClose(ws);
  });

  test('send after close() is dropped and its callback gets an error; without a callback it does not throw', async (t) => {
    const started = await startServer(t);
    const { client: ws, server } = await connectPair(t, started);
    const late: unknown[] = [];
    server.on('message', (ev) => late.push(ev.data));
    const serverClosed = nextClose(server);
    ws.close();
    const whileClosing = await withTimeout(new Promise<Error | undefined>((resolve) => ws.send('late', resolve)), 'the send callback');
    assert.ok(whileClosing instanceof Error);
    assert.doesNotThrow(() => ws.send('late too'));
    await nextClose(ws);
    await serverClosed;
    const whenClosed = await withTimeout(new Promise<Error | undefined>((resolve) => ws.send(Buffer.from('x'), resolve)), 'the send callback');
    assert.ok(whenClosed instanceof Error);
    const blobWhenClosed = await withTimeout(new Promise<Error | undefined>((resolve) => ws.send(new Blob(['x']), resolve)), 'the send callback');
    assert.ok(blobWhenClosed instanceof Error);
    assert.deepEqual(late, []);
  });

  test('the send callback runs after the write, without an error, in order', async (t) => {
    const started = await startServer(t);
    const { client: ws } = await connectPair(t, started);
    const calls: Array<[string, Error | undefined]> = [];
    let returned = false;
    const done = withTimeout(new Promise<void>((resolve) => {
      ws.send('a', (err) => calls.push(['a', err]));
      ws.send(Buffer.from('b'), {}, (err) => calls.push(['b', err]));
      ws.send(new Blob(['c']), (err) => {
        calls.push(['c', err]);
        resolve();
      });
      returned = true;
      assert.deepEqual(calls, []);
    }), 'the send callbacks');
    await done;
    assert.ok(returned);
    assert.deepEqual(calls, [['a', undefined], ['b', undefined], ['c', undefined]]);
  });

  test('bufferedAmount counts a large send until its callback, then returns to 0', async (t) => {
    const started = await startServer(t);
    const { client: ws, server } = await connectPair(t, started);
    const big = Buffer.alloc(8 * 1024 * 1024, 0x61);
    const arrived = nextMessage(server, 20_000);
    assert.equal(ws.bufferedAmount, 0);
    let inCallback = -1;
    const written = withTimeout(new Promise<Error | undefined>((resolve) => ws.send(big, (err) => {
      inCallback = ws.bufferedAmount;
      resolve(err);
    })), 'the send callback', 20_000);
    assert.ok(ws.bufferedAmount > 0, 'bufferedAmount right after send');
    assert.equal(ws.bufferedAmount, big.length);
    assert.equal(await written, undefined);
    assert.equal(inCallback, 0);
    assert.equal(ws.bufferedAmount, 0);
    assert.equal((await arrived).rawData.length, big.length);
  });
});

describe('close', { timeout: 30_000 }, () => {
  test('client codes: 1000 and 3000-4999 are accepted, others are InvalidAccessError; a reason over 123 bytes is SyntaxError', async (t) => {
    const started = await startServer(t);
    const { client: ws, server } = await connectPair(t, started);
    for (const code of [0, 999, 1001, 1002, 1005, 1006, 1011, 1015, 2999, 5000, 65535]) {
      assert.throws(() => ws.close(code), isDomException('InvalidAccessError'), `code ${code}`);
    }
    assert.throws(() => ws.close(1000, 'é'.repeat(62)), isDomException('SyntaxError'));
    assert.throws(() => ws.close(undefined, 'x'.repeat(124)), isDomException('SyntaxError'));
    assert.equal(ws.readyState, OPEN);

    const serverClosed = nextClose(server);
    const clientClosed = nextClose(ws);
    const reason = 'é'.repeat(61) + 'x';
    ws.close(4999, reason);
    // Later calls are validated too, and then do nothing.
    ws.close(1000);
    ws.close(3000, 'x'.repeat(123));
    assert.throws(() => ws.close(1001), isDomException('InvalidAccessError'));
    const ev = await serverClosed;
    assert.equal(ev.code, 4999);
    assert.equal(ev.reason, reason);
    await clientClosed;
  });

  for (const code of [1001, 1008, 1011, 3000]) {
    test(`the server end may close with ${code}; the client sees it`, async (t) => {
      const started = await startServer(t);
      const { client: ws, server } = await connectPair(t, started);
      const clientClosed = nextClose(ws);
      server.close(code, `because ${code}`);
      const ev = await clientClosed;
      assert.deepEqual([ev.code, ev.reason, ev.wasClean], [code, `because ${code}`, true]);
    });
  }

  test('the server end still refuses codes that never go on the wire', async (t) => {
    const started = await startServer(t);
    const { server } = await connectPair(t, started);
    for (const code of [999, 1004, 1005, 1006, 1015, 2000, 5000]) {
      assert.throws(() => server.close(code), isDomException('InvalidAccessError'), `code ${code}`);
    }
    assert.throws(() => server.close(1000, 'x'.repeat(124)), isDomException('SyntaxError'));
  });

  test('close() before open: error event, then close 1006, not clean', async (t) => {
    const { url } = await startServer(t);
    const ws = client(t, url);
    const events: string[] = [];
    ws.onerror = (ev) => events.push(`error:${ev.message !== ''}`);
    ws.onclose = (ev) => events.push(`close:${ev.code}:${ev.wasClean}`);
    ws.onopen = () => events.push('open');
    ws.close();
    await nextClose(ws);
    assert.deepEqual(events, ['error:true', 'close:1006:false']);
    assert.equal(ws.readyState, CLOSED);
  });

  test('readyState is CLOSING right after close() while CONNECTING', {
  }, async (t) => {
    const { url } = await startServer(t);
    const ws = client(t, url);
    ws.close();
    assert.equal(ws.readyState, CLOSING);
    await nextClose(ws);
  });

  test('client-initiated close: both ends see the code, clean; the server sees the reason', async (t) => {
    const started = await startServer(t);
    const { client: ws, server } = await connectPair(t, started);
    const serverClosed = nextClose(server);
    const clientClosed = nextClose(ws);
    ws.close(3001, 'client bye');
    const [s, c] = await Promise.all([serverClosed, clientClosed]);
    assert.deepEqual([s.code, s.reason, s.wasClean], [3001, 'client bye', true]);
    assert.deepEqual([c.code, c.wasClean], [3001, true]);
    assert.equal(s.type, 'close');
    assert.equal(s.target, server);
    assert.equal(c.target, ws);
  });

  test('client-initiated close: the client\'s close event carries the reason it sent (the server echoes it)', {
  }, async (t) => {
    const started = await startServer(t);
    const { client: ws } = await connectPair(t, started);
    const closed = nextClose(ws);
    ws.close(1000, 'Clean Close');
    assert.equal((await closed).reason, 'Clean Close');
  });

  test('server-initiated close: both ends see the code, clean; the client sees the reason', async (t) => {
    const started = await startServer(t);
    const { client: ws, server } = await connectPair(t, started);
    const serverClosed = nextClose(server);
    const clientClosed = nextClose(ws);
    server.close(4000, 'server bye');
    const [s, c] = await Promise.all([serverClosed, clientClosed]);
    assert.deepEqual([c.code, c.reason, c.wasClean], [4000, 'server bye', true]);
    assert.deepEqual([s.code, s.wasClean], [4000, true]);
  });

  test('close() without a code: both ends see 1005 and an empty reason', async (t) => {
    const started = await startServer(t);
    const { client: ws, server } = await connectPair(t, started);
    const closes = Promise.all([nextClose(server), nextClose(ws)]);
    ws.close();
    for (const ev of await closes) assert.deepEqual([ev.code, ev.reason, ev.wasClean], [1005, '', true]);
  });

  test('the server closes TCP first after the closing handshake, whoever started it', async (t) => {
    const started = await startServer(t);
    started.wss.on('connection', (ws) => ws.on('message', () => ws.close(1000)));

    const answered = await RawClient.connect(started.url);
    t.after(() => answered.destroy());
    await answered.sendClose(1000, 'done');
    assert.equal((await answered.nextClose()).close.code, 1000);
    await answered.waitForServerTcpClose();

    const initiated = await RawClient.connect(started.url);
    t.after(() => initiated.destroy());
    await initiated.send({ opcode: 0x1, payload: 'close please' });
    assert.equal((await initiated.nextClose()).close.code, 1000);
    await initiated.waitForServerTcpClose();
  });

  test('the client waits for the server to close TCP after the close frames are exchanged', async (t) => {
    let peer: net.Socket | undefined;
    let peerSawFin = false;
    let firstByte = -1;
    let echo!: () => void;
    const echoed = new Promise<void>((resolve) => (echo = resolve));
    const port = await startTcpServer(t, (socket) => {
      peer = socket;
      socket.on('end', () => (peerSawFin = true));
      void readRequestHead(socket).then((request) => {
        socket.write(switchingProtocols(request));
        socket.once('data', (frame: Buffer) => {
          firstByte = frame[0]!;
          socket.write(Buffer.from([0x88, 0x02, 0x03, 0xe8]));
          echo();
        });
      });
    });
    const ws = client(t, `ws://127.0.0.1:${port}/`);
    await opened(ws);
    const closed = nextClose(ws);
    ws.close(1000);
    await withTimeout(echoed, 'the close frame');
    assert.equal(firstByte, 0x88, 'the client sends a close frame');
    // A client that hung up first would do so as soon as the echo arrives; give it the chance to.
    await delay(100);
    assert.equal(peerSawFin, false, 'the client must leave closing TCP to the server');
    assert.equal(ws.readyState, CLOSING);
    peer!.end();
    const ev = await closed;
    assert.deepEqual([ev.code, ev.wasClean], [1000, true]);
  });

  test('a peer that never answers the close frame is dropped after closeTimeout: 1006, not clean', async (t) => {
    const port = await startTcpServer(t, (socket) => {
      void readRequestHead(socket).then((request) => socket.write(switchingProtocols(request)));
    });
    const ws = client(t, `ws://127.0.0.1:${port}/`, [], { closeTimeout: 200 });
    await opened(ws);
    const closed = nextClose(ws);
    ws.close(1000);
    const ev = await closed;
    assert.deepEqual([ev.code, ev.wasClean], [1006, false]);
  });

  test('terminate() drops the connection at once: 1006, not clean', async (t) => {
    const started = await startServer(t);
    const { client: ws } = await connectPair(t, started);
    const closed = nextClose(ws);
    ws.terminate();
    assert.deepEqual([(await closed).code, (await closed).wasClean], [1006, false]);
    assert.equal(ws.readyState, CLOSED);
  });

  test('the server end notices a client that hangs up without a close frame: close 1006', {
  }, async (t) => {
    const started = await startServer(t);
    const { client: ws, server } = await connectPair(t, started);
    const closed = nextClose(server, 2000);
    ws.terminate();
    assert.deepEqual([(await closed).code, (await closed).wasClean], [1006, false]);
    assert.equal(started.wss.clients.size, 0);
  });

  test('terminate() while CONNECTING: error, then close 1006', async (t) => {
    const { url } = await startServer(t);
    const ws = client(t, url);
    const error = nextEvent<ErrorEvent>(ws, 'error');
    const closed = nextClose(ws);
    ws.terminate();
    assert.ok((await error).error instanceof Error);
    assert.equal((await closed).code, 1006);
  });
});

describe('event handlers and listeners', { timeout: 30_000 }, () => {
  test('onopen, onmessage, onclose and onerror start null and fire once set', async (t) => {
    const started = await startEchoServer(t);
    const ws = client(t, started.url);
    assert.deepEqual([ws.onopen, ws.onmessage, ws.onclose, ws.onerror], [null, null, null, null]);
    const seen: string[] = [];
    ws.onopen = (ev) => {
      seen.push(ev.type);
      ws.send('echo');
    };
    ws.onmessage = (ev) => {
      seen.push(`${ev.type}:${String(ev.data)}`);
      ws.close();
    };
    ws.onclose = (ev) => seen.push(`${ev.type}:${ev.code}`);
    await nextClose(ws);
    assert.deepEqual(seen, ['open', 'message:echo', 'close:1005']);

    const refused = client(t, `ws://127.0.0.1:${await freePort()}/`);
    const errors: string[] = [];
    refused.onerror = (ev) => errors.push(ev.type);
    await nextClose(refused);
    assert.deepEqual(errors, ['error']);
  });

  test('setting a handler replaces the previous one; null removes it', async (t) => {
    const started = await startServer(t);
    const { client: ws, server } = await connectPair(t, started);
    const calls: string[] = [];
    const first = (ev: MessageEvent) => calls.push(`first:${String(ev.data)}`);
    const second = (ev: MessageEvent) => calls.push(`second:${String(ev.data)}`);
    ws.onmessage = first;
    assert.equal(ws.onmessage, first);
    ws.onmessage = second;
    assert.equal(ws.onmessage, second);
    let next = nextMessage(ws);
    server.send('1');
    await next;
    ws.onmessage = null;
    assert.equal(ws.onmessage, null);
    next = nextMessage(ws);
    server.send('2');
    await next;
    assert.deepEqual(calls, ['second:1']);
  });

  test('addEventListener ignores duplicates, honours once and handleEvent; removeEventListener removes', async (t) => {
    const started = await startServer(t);
    const { client: ws, server } = await connectPair(t, started);
    const seen: string[] = [];
    const fn = (ev: MessageEvent) => seen.push(`fn:${String(ev.data)}`);
    const handler = {
      calls: 0,
      handleEvent(ev: MessageEvent) {
        this.calls++;
        seen.push(`object:${String(ev.data)}`);
      },
    };
    ws.addEventListener('message', fn);
    ws.addEventListener('message', fn);
    ws.addEventListener('message', (ev) => seen.push(`once:${String(ev.data)}`), { once: true });
    ws.addEventListener('message', handler);
    let next = collectMessages(ws, 2);
    server.send('a');
    server.send('b');
    await next;
    assert.deepEqual(seen, ['fn:a', 'once:a', 'object:a', 'fn:b', 'object:b']);
    assert.equal(handler.calls, 2);

    ws.removeEventListener('message', fn);
    ws.removeEventListener('message', handler);
    next = collectMessages(ws, 1);
    server.send('c');
    await next;
    assert.equal(seen.length, 5);
  });

  test('a listener that throws does not break later listeners or the connection; the error surfaces later', async (t) => {
    const started = await startServer(t);
    const { client: ws, server } = await connectPair(t, started);
    const uncaught = uncaughtExceptions(1);
    ws.addEventListener('message', () => {
      throw new Error('listener failure');
    }, { once: true });
    const later = nextMessage(ws);
    server.send('first');
    assert.equal((await later).data, 'first');
    assert.equal((await uncaught)[0]!.message, 'listener failure');
    assert.equal(ws.readyState, OPEN);
    const again = nextMessage(ws);
    server.send('second');
    assert.equal((await again).data, 'second');
  });

  test('an error event with no listener does not throw', async (t) => {
    const ws = client(t, `ws://127.0.0.1:${await freePort()}/`);
    const ev = await nextClose(ws);
    assert.equal(ev.code, 1006);
  });
});

describe('async iteration', { timeout: 30_000 }, () => {
  test('for await yields the messages and ends when the connection closes', async (t) => {
    const started = await startServer(t);
    started.wss.on('connection', (ws) => ws.once('message', () => {
      ws.send('one');
      ws.send(Buffer.from([2]));
      ws.send('three');
      ws.close(1000);
    }));
    const ws = client(t, started.url);
    await opened(ws);
    const got: unknown[] = [];
    const iterate = (async () => {
      for await (const ev of ws) got.push(ev.isBinary ? [...ev.rawData] : ev.data);
    })();
    ws.send('start');
    await withTimeout(iterate, 'the iteration to end');
    assert.deepEqual(got, ['one', [2], 'three']);
    assert.equal(ws.readyState, CLOSED);
  });

  test('iterating a closed WebSocket ends at once', async (t) => {
    const ws = client(t, `ws://127.0.0.1:${await freePort()}/`);
    await nextClose(ws);
    const got: MessageEvent[] = [];
    await withTimeout((async () => {
      for await (const ev of ws) got.push(ev);
    })(), 'the iteration to end');
    assert.deepEqual(got, []);
  });

  test('breaking out of the loop removes its listeners', async (t) => {
    const started = await startServer(t);
    const { client: ws, server } = await connectPair(t, started);
    const before = ws.listenerCount('message');
    const loop = (async () => {
      for await (const ev of ws) if (ev.data === 'stop') break;
    })();
    server.send('go on');
    server.send('stop');
    await withTimeout(loop, 'the loop to break');
    assert.equal(ws.listenerCount('message'), before);
    assert.equal(ws.readyState, OPEN);
  });
});

describe('connection failures', { timeout: 30_000 }, () => {
  test('a refused connection: error then close 1006, no throw, no unhandled rejection', async (t) => {
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on('unhandledRejection', onRejection);
    t.after(() => process.off('unhandledRejection', onRejection));

    const ws = client(t, `ws://127.0.0.1:${await freePort()}/`);
    const order: string[] = [];
    let error: ErrorEvent | undefined;
    ws.addEventListener('error', (ev) => {
      error = ev;
      order.push('error');
    });
    ws.addEventListener('close', () => order.push('close'));
    const ev = await nextClose(ws);
    assert.deepEqual(order, ['error', 'close']);
    assert.deepEqual([ev.code, ev.reason, ev.wasClean], [1006, '', false]);
    assert.equal(ws.readyState, CLOSED);
    assert.equal((error!.error as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    await delay(20);
    assert.deepEqual(rejections, []);
  });

  test('invalid URLs, other schemes and fragments throw SyntaxError from the constructor', () => {
    for (const bad of ['not a url', '/relative', 'ftp://127.0.0.1/', 'file:///tmp/x', 'ws://127.0.0.1:1/#frag', 'http://127.0.0.1:1/p#x']) {
      assert.throws(() => new WebSocket(bad), isDomException('SyntaxError'), bad);
    }
  });

  test('an empty fragment (ws://host/#) is a SyntaxError as well', {
  }, async (t) => {
    const port = await freePort();
    let ws: WebSocket | undefined;
    try {
      ws = new WebSocket(`ws://127.0.0.1:${port}/#`);
    } catch (err) {
      assert.ok(isDomException('SyntaxError')(err));
      return;
    }
    t.after(() => ws!.terminate());
    await nextClose(ws);
    assert.fail('the constructor accepted a URL with an empty fragment');
  });

  test('invalid or duplicate subprotocols throw SyntaxError from the constructor', async () => {
    const port = await freePort();
    for (const protocols of [['a', 'a'], ['with space'], ['']]) {
      assert.throws(() => new WebSocket(`ws://127.0.0.1:${port}/`, protocols), { name: 'SyntaxError' }, JSON.stringify(protocols));
    }
  });

  test('the subprotocol SyntaxError is a DOMException, as the browser throws', {
  }, async () => {
    const port = await freePort();
    assert.throws(() => new WebSocket(`ws://127.0.0.1:${port}/`, ['a', 'a']), isDomException('SyntaxError'));
  });

  test('a server that never answers: the handshake times out with error and close 1006', async (t) => {
    const port = await startTcpServer(t, () => {});
    const ws = client(t, `ws://127.0.0.1:${port}/`, [], { handshakeTimeout: 200 });
    const error = nextEvent<ErrorEvent>(ws, 'error');
    const closed = nextClose(ws);
    assert.match((await error).message, /timed out/);
    assert.deepEqual([(await closed).code, ws.readyState], [1006, CLOSED]);
  });

  test('a server that answers 404: error naming the status, close 1006', async (t) => {
    const server = http.createServer((_req, res) => {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not here');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }));
    const ws = client(t, `ws://127.0.0.1:${portOf(server.address())}/missing`);
    const error = nextEvent<ErrorEvent>(ws, 'error');
    const closed = nextClose(ws);
    assert.match((await error).message, /404/);
    assert.equal((await closed).code, 1006);
  });

  test('the first frames may arrive with the 101; open is still dispatched before the message', {
  }, async (t) => {
    const port = await startTcpServer(t, (socket) => {
      void readRequestHead(socket).then((request) => {
        const greeting = Buffer.from([0x81, 0x05, ...Buffer.from('hello')]);
        socket.write(Buffer.concat([Buffer.from(switchingProtocols(request), 'latin1'), greeting]));
      });
    });
    const ws = client(t, `ws://127.0.0.1:${port}/`);
    const order: string[] = [];
    ws.onopen = () => order.push('open');
    ws.onmessage = (ev) => order.push(`message:${String(ev.data)}`);
    await nextMessage(ws);
    assert.deepEqual(order, ['open', 'message:hello']);
  });
});

describe('ping and pong', { timeout: 30_000 }, () => {
  test('a ping is answered with a pong automatically; both ends see the events with the data', async (t) => {
    const started = await startServer(t);
    const { client: ws, server } = await connectPair(t, started);
    const serverPing = nextEvent<Buffer>(server, 'ping');
    const clientPong = nextEvent<Buffer>(ws, 'pong');
    ws.ping('are you there');
    assert.deepEqual(await serverPing, Buffer.from('are you there'));
    assert.deepEqual(await clientPong, Buffer.from('are you there'));

    const clientPing = nextEvent<Buffer>(ws, 'ping');
    const serverPong = nextEvent<Buffer>(server, 'pong');
    server.ping(Buffer.from([1, 2, 3]));
    assert.deepEqual(await clientPing, Buffer.from([1, 2, 3]));
    assert.deepEqual(await serverPong, Buffer.from([1, 2, 3]));
  });

  test('an unsolicited pong and an empty ping arrive as events', async (t) => {
    const started = await startServer(t);
    const { client: ws, server } = await connectPair(t, started);
    const pong = nextEvent<Buffer>(server, 'pong');
    ws.pong('unsolicited');
    assert.deepEqual(await pong, Buffer.from('unsolicited'));
    const ping = nextEvent<Buffer>(server, 'ping');
    ws.ping();
    assert.equal((await ping).length, 0);
  });

  test('a ping payload over 125 bytes is a RangeError', async (t) => {
    const started = await startServer(t);
    const { client: ws } = await connectPair(t, started);
    assert.throws(() => ws.ping(Buffer.alloc(126)), RangeError);
    assert.doesNotThrow(() => ws.ping(Buffer.alloc(125)));
    assert.equal(ws.readyState, OPEN);
  });
});

describe('limits', { timeout: 30_000 }, () => {
  test('a message over the client\'s maxPayload: error, and both ends close with 1009', async (t) => {
    const started = await startServer(t);
    const { client: ws, server } = await connectPair(t, started, { maxPayload: 1024 });
    const error = nextEvent<ErrorEvent>(ws, 'error');
    const closes = Promise.all([nextClose(ws), nextClose(server)]);
    const messages: unknown[] = [];
    ws.on('message', (ev) => messages.push(ev));
    server.send(Buffer.alloc(1024));
    server.send(Buffer.alloc(1025));
    assert.match((await error).message, /1024/);
    const [c, s] = await closes;
    assert.equal(c.code, 1009);
    assert.equal(c.wasClean, false);
    assert.equal(s.code, 1009);
    assert.equal(messages.length, 1);
  });

  test('a message over the server\'s maxPayload closes with 1009 on both ends', async (t) => {
    const started = await startServer(t, { maxPayload: 100 });
    const { client: ws, server } = await connectPair(t, started);
    const closes = Promise.all([nextClose(ws), nextClose(server)]);
    ws.send('x'.repeat(101));
    const [c, s] = await closes;
    assert.equal(c.code, 1009);
    assert.equal(s.code, 1009);
  });
});
