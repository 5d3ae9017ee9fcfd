// Graceful shutdown: wss.close() sends 1001 to every client, waits for their close frames (but not
// longer than closeTimeout for peers that never answer), then calls back; and a process that closes its
// server has nothing left to keep it alive, heartbeat or not.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket, type CloseEvent } from '../src/index.js';
import { rawPair } from './support/raw-peer.js';
import {
  connectPair, startServer, upgradeRequest, withTimeout, WAIT_MS, type Started,
} from './support/websocket-harness.js';

const OPTIONS = { timeout: 30_000 };

/** Calls wss.close(); the promise settles with the callback, and `called` tells whether it already ran. */
function closeWithCallback(started: Started): { done: Promise<void>; called: () => boolean } {
  let called = false;
  const done = new Promise<void>((resolve, reject) => {
    started.wss.close((err) => {
      called = true;
      if (err) reject(err);
      else resolve();
    });
  });
  return { done, called: () => called };
}

function closeEvent(ws: WebSocket): Promise<CloseEvent> {
  return new Promise((resolve) => ws.once('close', resolve));
}


describe('wss.close()', OPTIONS, () => {
  test('sends 1001 to every client, and calls back only after all of them have closed', async (t) => {
    const started = await startServer(t, { closeTimeout: 5000 });
    const pairs = await Promise.all([1, 2, 3].map(() => connectPair(t, started)));
    const order: string[] = [];
    const clientCloses = pairs.map(({ client }) => closeEvent(client));
    const serverCloses = pairs.map(({ server }, i) => closeEvent(server).then((ev) => (order.push(`server end ${i}`), ev)));
    const { done } = closeWithCallback(started);
    await withTimeout(done.then(() => order.push('callback')), 'the close callback');

    assert.deepEqual(order.slice(-1), ['callback']);
    assert.equal(order.length, 4);
    for (const ev of [...await Promise.all(clientCloses), ...await Promise.all(serverCloses)]) {
      assert.deepEqual([ev.code, ev.reason, ev.wasClean], [1001, 'server shutting down', true]);
    }
    assert.equal(started.wss.clients.size, 0);
  });

  test('waits for a client\'s close frame: no callback until the client answers', async (t) => {
    const started = await startServer(t, { closeTimeout: 5000 });
    const { peer, server } = await rawPair(t, started);
    peer.read();
    const serverClosed = closeEvent(server);
    const { done, called } = closeWithCallback(started);
    assert.equal(await peer.nextCloseCode(), 1001);
    // The server has said its part; it must now wait for ours.
    await sleep(200);
    assert.equal(called(), false);
    assert.equal(server.readyState, WebSocket.CLOSING);
    peer.sendClose(1001);
    await withTimeout(done, 'the close callback once the client answered');
    const ev = await serverClosed;
    assert.deepEqual([ev.code, ev.wasClean], [1001, true]);
    await peer.waitClosed();
  });

  test('a client that never answers is dropped after closeTimeout and close() still completes', async (t) => {
    const started = await startServer(t, { closeTimeout: 300 });
    const good = await connectPair(t, started);
    const { peer, server } = await rawPair(t, started);
    const mute = closeEvent(server);
    const polite = closeEvent(good.client);
    const { done } = closeWithCallback(started);
    await withTimeout(done, 'the close callback despite the mute client');
    const muteClose = await mute;
    assert.deepEqual([muteClose.code, muteClose.wasClean], [1006, false]);
    const politeClose = await polite;
    assert.deepEqual([politeClose.code, politeClose.wasClean], [1001, true]);
    assert.equal(started.wss.clients.size, 0);
    // The mute peer sees its connection end once it reads again.
    peer.read();
    await peer.waitClosed();
  });

  test('a handshake still waiting on verifyClient does not outlive close()', {
  }, async (t) => {
    let asked!: () => void;
    const verifying = new Promise<void>((resolve) => (asked = resolve));
    const handshakeTimeout = 3000;
    const started = await startServer(t, {
      handshakeTimeout,
      verifyClient: () => {
        asked();
        return new Promise<boolean>(() => {});
      },
    });
    const socket = net.connect({ host: '127.0.0.1', port: started.port });
    t.after(() => socket.destroy());
    socket.on('error', () => {});
    socket.resume();
    const socketClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(upgradeRequest('/'));
    await withTimeout(verifying, 'verifyClient to be called');
    const { done } = closeWithCallback(started);
    // Half of handshakeTimeout, the only other thing that would end the handshake.
    await withTimeout(socketClosed, 'the pending handshake to be ended by close()', handshakeTimeout / 2);
    await withTimeout(done, 'the close callback', handshakeTimeout / 2);
  });
});

describe('a process that closes its server exits by itself', OPTIONS, () => {
  const index = fileURLToPath(new URL('../src/index.js', import.meta.url));

  /**
   * A script that starts a server, opens `clients` clients (and, if asked, one raw peer that never
   * answers the close), closes the server and prints what the clients saw. It schedules nothing after
   * that, so it exits only if the engine left no handle open; if it is still running after 3 s it says
   * what keeps it alive.
   */
  function script(options: { heartbeat?: { interval: number; timeout: number }; mutePeer: boolean }): string {
    return `
      import net from 'node:net';
      import { WebSocket, WebSocketServer } from ${JSON.stringify(index)};
      const heartbeat = ${JSON.stringify(options.heartbeat)};
      const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', closeTimeout: 300, heartbeat });
      await new Promise((resolve) => wss.once('listening', resolve));
      const port = wss.address().port;
      const codes = [];
      let pings = 0;
      for (let i = 0; i < 5; i++) {
        const ws = new WebSocket('ws://127.0.0.1:' + port + '/', [], { heartbeat });
        await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = (ev) => reject(ev.error); });
        ws.onclose = (ev) => codes.push(ev.code);
        ws.on('ping', () => pings++);
      }
      let mute = null;
      if (${options.mutePeer}) {
        mute = net.connect({ host: '127.0.0.1', port });
        mute.on('error', () => {});
        mute.write(${JSON.stringify(upgradeRequest('/'))});
        await new Promise((resolve) => mute.once('data', resolve));
        mute.pause();
      }
      // Long enough for the heartbeat to ping and be answered a few times.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const expected = 5 + (mute ? 1 : 0);
      if (wss.clients.size !== expected) throw new Error('clients: ' + wss.clients.size);
      wss.close(() => {
        console.log(JSON.stringify({ codes, clients: wss.clients.size, pinged: pings > 0 }));
        // The test's own peer, not the server's: it is paused and would never notice the end.
        mute?.destroy();
      });
      setTimeout(() => console.error('still running: ' + process.getActiveResourcesInfo().join(', ')), 3000).unref();
    `;
  }

  for (const options of [
    { mutePeer: false },
    { heartbeat: { interval: 100, timeout: 100 }, mutePeer: false },
    // The heartbeat would drop the mute peer before close() if it were due within the script's 300 ms.
    { heartbeat: { interval: 1000, timeout: 1000 }, mutePeer: true },
  ]) {
    const name = `${options.heartbeat ? 'with' : 'without'} heartbeat${options.mutePeer ? ', one client never answering the close' : ''}`;
    // 100 ms heartbeats are due several times in the script's 300 ms; 1000 ms ones are not.
    const pinged = options.heartbeat?.interval === 100;
    test(name, async () => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script(options)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      try {
        const code = await withTimeout(exited, 'the child process to exit by itself', WAIT_MS).catch((err: Error) => {
          throw new Error(`${err.message}; stdout: ${stdout}; stderr: ${stderr}`);
        });
        assert.equal(code, 0, stderr);
      } finally {
        if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid);
      }
      assert.deepEqual(JSON.parse(stdout), { codes: [1001, 1001, 1001, 1001, 1001], clients: 0, pinged });
    });
  }
});
