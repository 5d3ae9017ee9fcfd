// The browser side of the interop tests: the test drives the native WebSocket through
// window.peer, and every result is plain JSON so it crosses page.evaluate unchanged.
'use strict';

// Payloads up to this size are returned verbatim so a failing test shows what came
// back; bigger ones are compared by length and SHA-256 (the Python peers do the same).
const INLINE_LIMIT = 1024;
// Mixes 1-, 2-, 3- and 4-byte UTF-8 sequences so large text splits code points across
// frames and TCP reads.
const TEXT_UNIT = 'a\u00e9\u20ac\u{1F600}';
const TEXT_UNIT_BYTES = 10;

const sockets = new Map();
let nextId = 1;

function pattern(kind, size) {
  if (kind === 'text') return TEXT_UNIT.repeat(Math.ceil(size / TEXT_UNIT_BYTES));
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = i % 251;
  return bytes.buffer;
}

function toBase64(bytes) {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function fromBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0)).buffer;
}

async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

// What arrived, including how the browser typed it (string, ArrayBuffer or Blob).
async function describe(data) {
  if (typeof data === 'string') {
    const bytes = new TextEncoder().encode(data);
    const summary = { type: 'text', bytes: bytes.length, sha256: await sha256(bytes) };
    if (bytes.length <= INLINE_LIMIT) summary.text = data;
    return summary;
  }
  const as = data instanceof Blob ? 'blob' : data instanceof ArrayBuffer ? 'arraybuffer' : typeof data;
  const bytes = new Uint8Array(as === 'blob' ? await data.arrayBuffer() : data);
  const summary = { type: 'binary', as, bytes: bytes.length, sha256: await sha256(bytes) };
  if (bytes.length <= INLINE_LIMIT) summary.base64 = toBase64(bytes);
  return summary;
}

function payloadOf(spec) {
  if ('text' in spec) return spec.text;
  if ('base64' in spec) return fromBase64(spec.base64);
  if ('blob' in spec) return new Blob([fromBase64(spec.blob)]);
  if ('json' in spec) return JSON.stringify(spec.json);
  const data = pattern(spec.pattern, spec.size);
  return spec.asBlob ? new Blob([data]) : data;
}

function socketOf(id) {
  const entry = sockets.get(id);
  if (!entry) throw new Error(`no socket ${id}`);
  return entry;
}

window.peer = {
  // Resolves once the socket opens or fails; a failure carries the close event. `target` is a
  // path on this page's host, or a whole ws:// URL.
  open(target, protocols, binaryType) {
    const url = target.startsWith('ws://') ? target : `ws://${location.host}${target}`;
    const ws = protocols === undefined ? new WebSocket(url) : new WebSocket(url, protocols);
    if (binaryType) ws.binaryType = binaryType;
    const id = nextId++;
    const entry = { ws, messages: [], waiters: [], errors: 0 };
    entry.closed = new Promise((resolve) => {
      ws.addEventListener('close', (ev) => resolve({ code: ev.code, reason: ev.reason, wasClean: ev.wasClean }));
    });
    ws.addEventListener('error', () => { entry.errors++; });
    // Summaries are queued as promises in arrival order, so async Blob reads cannot reorder them.
    ws.addEventListener('message', (ev) => {
      const summary = describe(ev.data);
      const waiter = entry.waiters.shift();
      if (waiter) waiter(summary);
      else entry.messages.push(summary);
    });
    sockets.set(id, entry);
    const opened = new Promise((resolve) => ws.addEventListener('open', () => resolve(true)));
    return Promise.race([opened, entry.closed.then(() => false)]).then(async (ok) => (ok
      ? { id, protocol: ws.protocol, extensions: ws.extensions }
      : { id, failed: await entry.closed, errors: entry.errors }));
  },

  send(id, spec) {
    socketOf(id).ws.send(payloadOf(spec));
  },

  sendAll(id, specs) {
    const { ws } = socketOf(id);
    for (const spec of specs) ws.send(payloadOf(spec));
  },

  next(id) {
    const entry = socketOf(id);
    const queued = entry.messages.shift();
    return queued ?? new Promise((resolve) => entry.waiters.push(resolve));
  },

  close(id, code, reason) {
    const { ws } = socketOf(id);
    if (code === undefined) ws.close();
    else if (reason === undefined) ws.close(code);
    else ws.close(code, reason);
  },

  async closed(id) {
    const entry = socketOf(id);
    const event = await entry.closed;
    sockets.delete(id);
    return { ...event, errors: entry.errors };
  },
};
