/**
 * The hub a tutorial would write on the `ws` package: the same JSON envelopes as ours on /ws
 * (subscribe, publish; subscribed, message, ack), channels as sets of sockets, and a publish that
 * does the obvious thing — build the envelope, then `JSON.stringify` it and `send` it once per
 * subscriber. No history, presence, auth or limits: everything it leaves out only makes it faster.
 *
 *   node dist/bench/servers/naive-ws-hub.js [port]
 */
import { WebSocketServer, type WebSocket } from 'ws';
import { announceReady, exitWithParent, portArgument } from './lifecycle.js';

exitWithParent();
process.on('SIGTERM', () => process.exit(0));

interface Channel {
  offset: number;
  subscribers: Set<WebSocket>;
}

const channels = new Map<string, Channel>();

function channel(name: string): Channel {
  let c = channels.get(name);
  if (!c) {
    c = { offset: 0, subscribers: new Set() };
    channels.set(name, c);
  }
  return c;
}

function handle(ws: WebSocket, text: string): void {
  let m: { type?: unknown; channel?: unknown; data?: unknown; id?: unknown };
  try {
    m = JSON.parse(text);
  } catch {
    ws.send(JSON.stringify({ type: 'error', code: 'bad_request', message: 'the message is not valid JSON' }));
    return;
  }
  if (typeof m.channel !== 'string') {
    ws.send(JSON.stringify({ type: 'error', code: 'invalid_channel', message: 'channel must be a string' }));
    return;
  }
  const c = channel(m.channel);
  if (m.type === 'subscribe') {
    c.subscribers.add(ws);
    ws.on('close', () => c.subscribers.delete(ws));
    ws.send(JSON.stringify({ type: 'subscribed', channel: m.channel, offset: c.offset }));
  } else if (m.type === 'publish') {
    const envelope = {
      type: 'message', channel: m.channel, offset: ++c.offset, data: m.data,
      time: new Date().toISOString(), publisher: 'anonymous',
    };
    for (const subscriber of c.subscribers) subscriber.send(JSON.stringify(envelope));
    if (m.id !== undefined) ws.send(JSON.stringify({ type: 'ack', id: m.id, offset: c.offset }));
  } else {
    ws.send(JSON.stringify({ type: 'error', code: 'bad_request', message: 'unknown type' }));
  }
}

const wss = new WebSocketServer({ host: '127.0.0.1', port: portArgument(), path: '/ws', perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    if (!isBinary) handle(ws, data.toString());
  });
});
wss.on('listening', () => announceReady(wss.address()));
wss.on('error', (error) => {
  console.error(`naive-ws-hub: ${error.message}`);
  process.exit(1);
});
