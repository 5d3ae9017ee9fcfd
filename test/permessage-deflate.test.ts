import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import zlib from 'node:zlib';
import {
  acceptOffer,
  acceptResponse,
  DeflateError,
  makeOffer,
  MessageCodec,
  sharedLimiter,
  ZlibLimiter,
  type DeflateParams,
  type PerMessageDeflateOptions,
} from '../src/protocol/permessage-deflate.js';
import { HandshakeError } from '../src/protocol/handshake-error.js';
import { WebSocket, WebSocketServer } from '../src/index.js';
import { within, WAIT_MS } from './support/interop.js';
import { SeededRandom } from './support/seeded-random.js';

const DEFAULTS: DeflateParams = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const MiB = 1024 * 1024;
const random = new SeededRandom(7692);

function randomBytes(length: number): Buffer {
  return Buffer.from(random.bytes(length));
}

/** Text that compresses well but not to nothing: words drawn at random. */
function text(length: number): Buffer {
  const words = ['deflate', 'window', 'context', 'takeover', 'message', 'frame', 'socket', 'server', 'client', 'zlib'];
  let out = '';
  while (out.length < length) out += words[random.below(words.length)] + (random.below(8) === 0 ? '.\n' : ' ');
  return Buffer.from(out.slice(0, length));
}

function pair(params: DeflateParams, maxPayload = 64 * MiB): { server: MessageCodec; client: MessageCodec; close(): void } {
  const server = new MessageCodec(params, 'server', { maxPayload });
  const client = new MessageCodec(params, 'client', { maxPayload });
  return { server, client, close: () => (server.close(), client.close()) };
}

async function rejectsWith(promise: Promise<unknown>, closeCode: number): Promise<DeflateError> {
  const err = await promise.then(
    () => assert.fail(`expected a DeflateError ${closeCode}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof DeflateError, `expected a DeflateError, got ${String(err)}`);
  assert.equal(err.closeCode, closeCode, err.message);
  return err;
}

/** A plain zlib peer: inflates payloads one after the other on one stream, as a context-keeping receiver does. */
function zlibInflater(windowBits: number): { inflate(payload: Buffer): Promise<Buffer>; close(): void } {
  const stream = zlib.createInflateRaw({ windowBits });
  let chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return {
    inflate: (payload) =>
      new Promise((resolve, reject) => {
        stream.once('error', reject);
        stream.write(Buffer.concat([payload, TRAILER]));
        stream.flush(zlib.constants.Z_SYNC_FLUSH, () => {
          stream.off('error', reject);
          const out = Buffer.concat(chunks);
          chunks = [];
          resolve(out);
        });
      }),
    close: () => stream.close(),
  };
}

/** A plain zlib peer compressing as RFC 7692 says: sync flush, trailer removed. */
function zlibDeflater(windowBits: number): { deflate(message: Buffer): Promise<Buffer>; close(): void } {
  const stream = zlib.createDeflateRaw({ windowBits });
  let chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return {
    deflate: (message) =>
      new Promise((resolve) => {
        stream.write(message);
        stream.flush(zlib.constants.Z_SYNC_FLUSH, () => {
          const out = Buffer.concat(chunks);
          chunks = [];
          assert.deepEqual(out.subarray(-4), TRAILER);
          resolve(out.subarray(0, -4));
        });
      }),
    close: () => stream.close(),
  };
}

// ---------------------------------------------------------------------------------------------

describe('acceptOffer (server)', () => {
  const pmd = 'permessage-deflate';
  // [offer header, our options, expected response or null, expected params (defaults filled in)]
  const table: Array<[string | string[] | undefined, PerMessageDeflateOptions, string | null, Partial<DeflateParams>?]> = [
    // What browsers send
    [`${pmd}; client_max_window_bits`, {}, pmd],
    [pmd, {}, pmd],
    // Nothing to accept
    [undefined, {}, null],
    ['', {}, null],
    ['x-webkit-deflate-frame', {}, null],
    [['foo', `${pmd}`], {}, pmd],
    // server_no_context_takeover: echoed when asked for, added when we want it
    [`${pmd}; server_no_context_takeover`, {}, `${pmd}; server_no_context_takeover`, { serverNoContextTakeover: true }],
    [pmd, { serverNoContextTakeover: true }, `${pmd}; server_no_context_takeover`, { serverNoContextTakeover: true }],
    [pmd, { serverNoContextTakeover: false }, pmd],
    // client_no_context_takeover: the client's promise, confirmed; or our demand
    [`${pmd}; client_no_context_takeover`, {}, `${pmd}; client_no_context_takeover`, { clientNoContextTakeover: true }],
    [pmd, { clientNoContextTakeover: true }, `${pmd}; client_no_context_takeover`, { clientNoContextTakeover: true }],
    // server_max_window_bits: at most the client's, ours when smaller, ours when the client has none
    [`${pmd}; server_max_window_bits=10`, {}, `${pmd}; server_max_window_bits=10`, { serverMaxWindowBits: 10 }],
    [`${pmd}; server_max_window_bits=10`, { serverMaxWindowBits: 9 }, `${pmd}; server_max_window_bits=9`, { serverMaxWindowBits: 9 }],
    [`${pmd}; server_max_window_bits=10`, { serverMaxWindowBits: 12 }, `${pmd}; server_max_window_bits=10`, { serverMaxWindowBits: 10 }],
    [pmd, { serverMaxWindowBits: 11 }, `${pmd}; server_max_window_bits=11`, { serverMaxWindowBits: 11 }],
    [`${pmd}; server_max_window_bits=8`, {}, `${pmd}; server_max_window_bits=8`, { serverMaxWindowBits: 8 }],
    [`${pmd}; server_max_window_bits="12"`, {}, `${pmd}; server_max_window_bits=12`, { serverMaxWindowBits: 12 }],
    // client_max_window_bits: answered only when offered; never above the offered value
    [`${pmd}; client_max_window_bits`, { clientMaxWindowBits: 10 }, `${pmd}; client_max_window_bits=10`, { clientMaxWindowBits: 10 }],
    [`${pmd}; client_max_window_bits=12`, {}, `${pmd}; client_max_window_bits=12`, { clientMaxWindowBits: 12 }],
    [`${pmd}; client_max_window_bits=12`, { clientMaxWindowBits: 10 }, `${pmd}; client_max_window_bits=10`, { clientMaxWindowBits: 10 }],
    [`${pmd}; client_max_window_bits=12`, { clientMaxWindowBits: 14 }, `${pmd}; client_max_window_bits=12`, { clientMaxWindowBits: 12 }],
    [`${pmd}; client_max_window_bits`, { clientMaxWindowBits: true }, pmd],
    [pmd, { clientMaxWindowBits: 10 }, null],
    [pmd, { clientMaxWindowBits: 15 }, pmd],
    [`${pmd}, ${pmd}; client_max_window_bits`, { clientMaxWindowBits: 9 }, `${pmd}; client_max_window_bits=9`, { clientMaxWindowBits: 9 }],
    // Everything at once, in a fixed order
    [
      `${pmd}; client_max_window_bits=11; server_max_window_bits=13; client_no_context_takeover; server_no_context_takeover`,
      { serverMaxWindowBits: 12 },
      `${pmd}; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=11`,
      { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 12, clientMaxWindowBits: 11 },
    ],
    // Declined offers: the next one is taken
    [`${pmd}; foo, ${pmd}; server_max_window_bits=9`, {}, `${pmd}; server_max_window_bits=9`, { serverMaxWindowBits: 9 }],
    [`${pmd}; foo=1`, {}, null],
    [`${pmd}; server_max_window_bits`, {}, null],
    ...['7', '16', '08', '010', '1e1', '0xa', 'ten', '-9', '+9', '9.0'].map(
      (bad): [string, PerMessageDeflateOptions, string | null] => [`${pmd}; server_max_window_bits=${bad}, ${pmd}`, {}, pmd],
    ),
    ...['7', '16', '08', '00', 'x'].map((bad): [string, PerMessageDeflateOptions, string | null] => [`${pmd}; client_max_window_bits=${bad}`, {}, null]),
    [`${pmd}; server_no_context_takeover=1`, {}, null],
    [`${pmd}; client_no_context_takeover="x"`, {}, null],
    // Parameter names are case-sensitive: an unknown parameter
    [`${pmd}; Server_No_Context_Takeover`, {}, null],
    // Repeated parameters decline the offer, not the handshake
    [`${pmd}; server_no_context_takeover; server_no_context_takeover`, {}, null],
    [
      `${pmd}; client_max_window_bits; client_max_window_bits=10, ${pmd}; server_max_window_bits=12`,
      {},
      `${pmd}; server_max_window_bits=12`,
      { serverMaxWindowBits: 12 },
    ],
    [`${pmd}; a=1; b; a=2; a, ${pmd}`, {}, pmd],
    [`foo; x; x, ${pmd}; client_no_context_takeover`, {}, `${pmd}; client_no_context_takeover`, { clientNoContextTakeover: true }],
    [[`${pmd}; x; x`, `${pmd}; server_max_window_bits=11`], {}, `${pmd}; server_max_window_bits=11`, { serverMaxWindowBits: 11 }],
  ];

  for (const [header, options, response, params] of table) {
    test(`${JSON.stringify(header)} with ${JSON.stringify(options)}`, () => {
      const accepted = acceptOffer(header, options);
      if (response === null) {
        assert.equal(accepted, null);
      } else {
        assert.deepEqual(accepted, { response, params: { ...DEFAULTS, ...params } });
      }
    });
  }

  test('a malformed header is a 400, repeats or not', () => {
    for (const header of [
      `${pmd};`,
      `${pmd}; server_max_window_bits=`,
      `${pmd}; server_max_window_bits="1 0"`,
      `${pmd}; server_max_window_bits="1,0"`,
      `${pmd}; x; x; =1`,
      `${pmd}; x; x, ;`,
      `${pmd} ${pmd}`,
      `${pmd}; x=1; x=2 3`,
    ]) {
      assert.throws(
        () => acceptOffer(header, {}),
        (err: unknown) => err instanceof HandshakeError && err.status === 400 && /Invalid Sec-WebSocket-Extensions header/.test(err.message),
        header,
      );
    }
  });

  test('invalid options are programming errors', () => {
    const invalid = [
      { serverMaxWindowBits: 7 },
      { clientMaxWindowBits: 16 },
      { serverMaxWindowBits: 9.5 },
      { compressionWindowBits: 7 },
      { compressionWindowBits: 16 },
      { level: 10 },
      { memLevel: 0 },
    ];
    for (const options of invalid) {
      assert.throws(() => acceptOffer(pmd, options), RangeError);
      assert.throws(() => makeOffer(options), RangeError);
    }
  });
});

describe('makeOffer and acceptResponse (client)', () => {
  const pmd = 'permessage-deflate';

  test('offers', () => {
    assert.equal(makeOffer({}), pmd);
    assert.equal(makeOffer({ clientMaxWindowBits: true }), `${pmd}; client_max_window_bits`);
    assert.equal(
      makeOffer({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 9, threshold: 0 }),
      `${pmd}; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9`,
    );
    // Every offer we make is one a server of ours accepts.
    for (const options of [{}, { clientMaxWindowBits: true as const }, { serverMaxWindowBits: 8, clientMaxWindowBits: 8, serverNoContextTakeover: true }]) {
      assert.notEqual(acceptOffer(makeOffer(options), {}), null);
    }
  });

  // [response, our options, expected params (defaults filled in); null when not accepted]
  const valid: Array<[string, PerMessageDeflateOptions, Partial<DeflateParams> | null]> = [
    ['', {}, null],
    ['x-other', {}, null],
    [pmd, {}, {}],
    [` ${pmd} `, { clientMaxWindowBits: true }, {}],
    // The server may always add the no_context_takeover flags
    [`${pmd}; server_no_context_takeover`, {}, { serverNoContextTakeover: true }],
    [`${pmd}; client_no_context_takeover`, {}, { clientNoContextTakeover: true }],
    // Our offer to reset our window is kept even when the server does not echo it
    [pmd, { clientNoContextTakeover: true }, { clientNoContextTakeover: true }],
    // server_max_window_bits: any valid value when we did not limit it, at most ours when we did
    [`${pmd}; server_max_window_bits=10`, {}, { serverMaxWindowBits: 10 }],
    [`${pmd}; server_max_window_bits=10`, { serverMaxWindowBits: 12 }, { serverMaxWindowBits: 10 }],
    [`${pmd}; server_max_window_bits=12`, { serverMaxWindowBits: 12 }, { serverMaxWindowBits: 12 }],
    [`${pmd}; server_max_window_bits="9"`, {}, { serverMaxWindowBits: 9 }],
    // client_max_window_bits: the smaller of the answer and what we offered
    [`${pmd}; client_max_window_bits=10`, { clientMaxWindowBits: true }, { clientMaxWindowBits: 10 }],
    [`${pmd}; client_max_window_bits=10`, { clientMaxWindowBits: 12 }, { clientMaxWindowBits: 10 }],
    [`${pmd}; client_max_window_bits=12`, { clientMaxWindowBits: 9 }, { clientMaxWindowBits: 9 }],
    [pmd, { clientMaxWindowBits: 11 }, { clientMaxWindowBits: 11 }],
    [
      `${pmd}; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8; client_max_window_bits=8`,
      { serverMaxWindowBits: 8, clientMaxWindowBits: true },
      { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 8, clientMaxWindowBits: 8 },
    ],
    [`x-other, ${pmd}; client_no_context_takeover`, {}, { clientNoContextTakeover: true }],
  ];
  for (const [header, options, params] of valid) {
    test(`accepts ${JSON.stringify(header)} after offering ${JSON.stringify(options)}`, () => {
      assert.deepEqual(acceptResponse(header, options), params === null ? null : { ...DEFAULTS, ...params });
    });
  }

  // [response, our options, expected message]
  const invalid: Array<[string, PerMessageDeflateOptions, RegExp]> = [
    [`${pmd}; client_max_window_bits=10`, {}, /client_max_window_bits was not offered/],
    [`${pmd}; client_max_window_bits`, { clientMaxWindowBits: true }, /client_max_window_bits must be a number from 8 to 15/],
    [`${pmd}; server_max_window_bits`, {}, /server_max_window_bits must be a number/],
    [`${pmd}; server_max_window_bits=16`, {}, /server_max_window_bits must be a number/],
    [`${pmd}; server_max_window_bits=7`, {}, /server_max_window_bits must be a number/],
    [`${pmd}; server_max_window_bits=08`, {}, /server_max_window_bits must be a number/],
    [`${pmd}; client_max_window_bits=1x`, { clientMaxWindowBits: true }, /client_max_window_bits must be a number/],
    [`${pmd}; server_max_window_bits=12`, { serverMaxWindowBits: 10 }, /server_max_window_bits=12 exceeds the 10 offered/],
    [pmd, { serverMaxWindowBits: 10 }, /server_max_window_bits=10 was offered but not answered/],
    [`${pmd}; server_no_context_takeover=1`, {}, /server_no_context_takeover takes no value/],
    [`${pmd}; client_no_context_takeover="x"`, {}, /client_no_context_takeover takes no value/],
    [`${pmd}; foo`, {}, /unknown parameter foo/],
    [`${pmd}; mux=1; server_no_context_takeover`, {}, /unknown parameter mux/],
    [`${pmd}; server_no_context_takeover; server_no_context_takeover`, {}, /second "server_no_context_takeover".* in the server response/],
    [`${pmd}, ${pmd}`, {}, /accepted permessage-deflate more than once/],
    [`${pmd};`, {}, /Invalid Sec-WebSocket-Extensions header.* in the server response/],
  ];
  for (const [header, options, message] of invalid) {
    test(`fails on ${JSON.stringify(header)} after offering ${JSON.stringify(options)}`, () => {
      assert.throws(
        () => acceptResponse(header, options),
        (err: unknown) => err instanceof HandshakeError && err.status === undefined && message.test(err.message),
      );
    });
  }
});

// ---------------------------------------------------------------------------------------------

describe('MessageCodec', () => {
  test('the RFC 7692 section 7.2.3 examples', { timeout: 10_000 }, async () => {
    const { server, client, close } = pair(DEFAULTS);
    try {
      const hello = Buffer.from('Hello');
      assert.deepEqual(await server.compress(hello), Buffer.from('f248cdc9c90700', 'hex'));
      // The second "Hello" refers back to the first: context takeover.
      assert.deepEqual(await server.compress(hello), Buffer.from('f200110000', 'hex'));
      for (const hex of ['f248cdc9c90700', 'f200110000', '000500faff48656c6c6f00', 'f24805000000ffffcac9c90700', 'f348cdc9c9070000']) {
        assert.equal(String(await client.decompress(Buffer.from(hex, 'hex'))), 'Hello', hex);
      }
      // After a BFINAL block (the last example) the sender starts a new deflate stream.
      assert.equal(String(await client.decompress(Buffer.from('f248cdc9c90700', 'hex'))), 'Hello');
    } finally {
      close();
    }
  });

  test('round trips for every combination of no_context_takeover and window bits, both roles', { timeout: 120_000 }, async () => {
    // Repeats within 250 bytes, so that even an 8-bit window finds them.
    const block = randomBytes(200);
    const messages = [block, block, text(3000), Buffer.concat([block, block, block]), randomBytes(2000), Buffer.alloc(0), Buffer.from('€ and ✓')];
    for (const serverNoContextTakeover of [false, true]) {
      for (const clientNoContextTakeover of [false, true]) {
        for (let serverMaxWindowBits = 8; serverMaxWindowBits <= 15; serverMaxWindowBits++) {
          for (let clientMaxWindowBits = 8; clientMaxWindowBits <= 15; clientMaxWindowBits++) {
            const params = { serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits };
            const label = JSON.stringify(params);
            const { server, client, close } = pair(params);
            // Plain zlib peers inflating with exactly the negotiated windows.
            const serverOutput = zlibInflater(serverMaxWindowBits);
            const clientOutput = zlibInflater(clientMaxWindowBits);
            try {
              const sizes: Record<'server' | 'client', number[]> = { server: [], client: [] };
              for (const message of messages) {
                const fromServer = await server.compress(message);
                const fromClient = await client.compress(message);
                sizes.server.push(fromServer.length);
                sizes.client.push(fromClient.length);
                assert.deepEqual(await client.decompress(fromServer), message, label);
                assert.deepEqual(await server.decompress(fromClient), message, label);
                assert.deepEqual(await serverOutput.inflate(fromServer), message, label);
                assert.deepEqual(await clientOutput.inflate(fromClient), message, label);
              }
              // The same message twice: the second is much smaller exactly when the window is kept.
              for (const [role, reset] of [['server', serverNoContextTakeover], ['client', clientNoContextTakeover]] as const) {
                const [first, second] = sizes[role];
                if (reset) assert.equal(second, first, `${label} ${role}`);
                else assert.ok(second! < first! / 4, `${label} ${role}: ${first} then ${second}`);
              }
            } finally {
              close();
              serverOutput.close();
              clientOutput.close();
            }
          }
        }
      }
    }
  });

  test('the negotiated window bits reach zlib', { timeout: 30_000 }, async () => {
    // 600 random bytes sent twice: the second can only refer back to the first with a window of at least 10 bits
    // (zlib reaches back 2^bits - 262 bytes at most).
    const block = randomBytes(600);
    for (let bits = 8; bits <= 15; bits++) {
      const { server, close } = pair({ ...DEFAULTS, serverMaxWindowBits: bits });
      try {
        const first = await server.compress(block);
        const second = await server.compress(block);
        if (bits >= 10) assert.ok(second.length < 50, `${bits} bits: ${second.length}`);
        else assert.ok(second.length >= block.length, `${bits} bits: ${second.length}`);
        assert.ok(first.length >= block.length);
      } finally {
        close();
      }
    }
  });

  test('inflates what plain zlib produced with each window size', { timeout: 30_000 }, async () => {
    for (let bits = 8; bits <= 15; bits++) {
      for (const clientNoContextTakeover of [false, true]) {
        const params = { ...DEFAULTS, clientNoContextTakeover, clientMaxWindowBits: bits };
        const server = new MessageCodec(params, 'server', { maxPayload: MiB });
        const peer = zlibDeflater(bits);
        try {
          const block = randomBytes(1000);
          for (const message of [text(50_000), text(50_000), Buffer.concat([block, block]), Buffer.alloc(0), randomBytes(3000)]) {
            // A peer keeping its window is only inflatable by a receiver keeping its own.
            const payload = clientNoContextTakeover ? zlib.deflateRawSync(message, { windowBits: bits }) : await peer.deflate(message);
            assert.deepEqual(await server.decompress(payload), message, `${bits} bits`);
          }
        } finally {
          server.close();
          peer.close();
        }
      }
    }
  });

  test('empty messages, messages that grow, and 16 MiB messages round-trip', { timeout: 60_000 }, async () => {
    const { server, client, close } = pair(DEFAULTS, 16 * MiB);
    try {
      assert.deepEqual(await server.compress(Buffer.alloc(0)), Buffer.from([0x00]));
      assert.deepEqual(await server.compress(Buffer.alloc(0)), Buffer.from([0x00]));
      assert.deepEqual(await client.decompress(Buffer.from([0x00])), Buffer.alloc(0));
      assert.deepEqual(await client.decompress(Buffer.from([0x00])), Buffer.alloc(0));

      const incompressible = randomBytes(5000);
      const grown = await server.compress(incompressible);
      assert.ok(grown.length > incompressible.length);
      assert.deepEqual(await client.decompress(grown), incompressible);

      const bigText = Buffer.from(text(16 * MiB).toString('utf8'));
      const bigBinary = randomBytes(16 * MiB);
      for (const message of [bigText, bigBinary]) {
        assert.deepEqual(await client.decompress(await server.compress(message)), message);
        assert.deepEqual(await server.decompress(await client.compress(message)), message);
      }
    } finally {
      close();
    }
  });

  test('shouldCompress follows the threshold', () => {
    const params = DEFAULTS;
    const byDefault = new MessageCodec(params, 'server', { maxPayload: MiB });
    assert.equal(byDefault.shouldCompress(1023), false);
    assert.equal(byDefault.shouldCompress(1024), true);
    const always = new MessageCodec(params, 'server', { maxPayload: MiB, threshold: 0 });
    assert.equal(always.shouldCompress(0), true);
    assert.equal(byDefault.zlibStreams, 0, 'no zlib stream before the first message');
  });

  test('invalid codec options are programming errors', () => {
    assert.throws(() => new MessageCodec({ ...DEFAULTS, serverMaxWindowBits: 16 }, 'server', { maxPayload: 1 }), RangeError);
    assert.throws(() => new MessageCodec(DEFAULTS, 'server', { maxPayload: 1, compressionWindowBits: 13.5 }), RangeError);
    assert.throws(() => new MessageCodec(DEFAULTS, 'server', { maxPayload: 1, level: 10 }), RangeError);
    assert.throws(() => new MessageCodec(DEFAULTS, 'server', { maxPayload: 1, memLevel: 0 }), RangeError);
    assert.throws(() => new MessageCodec(DEFAULTS, 'server', { maxPayload: 1, concurrency: 0 }), RangeError);
    assert.throws(() => new MessageCodec(DEFAULTS, 'server', { maxPayload: NaN }), RangeError);
  });

  test('level and memLevel reach zlib', { timeout: 10_000 }, async () => {
    const message = text(100_000);
    const stored = new MessageCodec(DEFAULTS, 'server', { maxPayload: MiB, level: 0 });
    const best = new MessageCodec(DEFAULTS, 'server', { maxPayload: MiB, level: 9, memLevel: 9 });
    try {
      assert.ok((await stored.compress(message)).length > message.length);
      assert.ok((await best.compress(message)).length < message.length / 2);
    } finally {
      stored.close();
      best.close();
    }
  });

  describe('the compression window', () => {
    /**
     * Random blocks, each sent twice in a row: the second copy is `distance` bytes after the first, so
     * a compressor refers back to it only with a window of at least distance + 262 bytes, and a stream
     * that does cannot be inflated with a window smaller than `distance`.
     */
    function repeatsAt(distance: number): Buffer[] {
      const block = randomBytes(distance);
      return [block, block, randomBytes(distance)];
    }

    /** Inflates the payloads in turn with a plain zlib stream of `windowBits`, keeping its window as the peer would. */
    async function inflatesWith(windowBits: number, payloads: Buffer[]): Promise<Buffer[]> {
      const peer = zlibInflater(windowBits);
      try {
        const messages: Buffer[] = [];
        for (const payload of payloads) messages.push(await peer.inflate(payload));
        return messages;
      } finally {
        peer.close();
      }
    }

    async function compressAll(codec: MessageCodec, messages: Buffer[]): Promise<Buffer[]> {
      const payloads: Buffer[] = [];
      try {
        for (const message of messages) payloads.push(await codec.compress(message));
      } finally {
        codec.close();
      }
      return payloads;
    }

    test('by default, 13 bits under a negotiated 15: what is sent inflates with 15 and with 13 bits', { timeout: 30_000 }, async () => {
      // 6,000 bytes apart: within a 13-bit window (8,192 - 262), beyond a 12-bit one.
      const messages = [...repeatsAt(6000), text(50_000), text(50_000)];
      for (const role of ['server', 'client'] as const) {
        const payloads = await compressAll(new MessageCodec(DEFAULTS, role, { maxPayload: MiB }), messages);
        assert.ok(payloads[1]!.length < 100, `${role}: the repeat 6,000 bytes back is found (${payloads[1]!.length} bytes)`);
        assert.deepEqual(await inflatesWith(15, payloads), messages, role);
        assert.deepEqual(await inflatesWith(13, payloads), messages, role);
        await assert.rejects(inflatesWith(12, payloads), /too far back/, `${role}: the 12-bit inflater proves the window is used`);
      }
    });

    test('a repeat beyond 13 bits is only found with compressionWindowBits 15', { timeout: 30_000 }, async () => {
      const messages = repeatsAt(20_000);
      const byDefault = await compressAll(new MessageCodec(DEFAULTS, 'server', { maxPayload: MiB }), messages);
      const wide = await compressAll(new MessageCodec(DEFAULTS, 'server', { maxPayload: MiB, compressionWindowBits: 15 }), messages);
      assert.ok(byDefault[1]!.length >= 20_000, `13 bits: ${byDefault[1]!.length} bytes`);
      assert.ok(wide[1]!.length < 1000, `15 bits: ${wide[1]!.length} bytes`);
      assert.deepEqual(await inflatesWith(15, wide), messages);
      await assert.rejects(inflatesWith(14, wide), /too far back/);
    });

    test('never above the window negotiated for what we send, whatever compressionWindowBits says', { timeout: 60_000 }, async () => {
      for (let bits = 8; bits <= 14; bits++) {
        // One repeat just within the window zlib uses at these bits (9 stands in for 8, reaching back 250
        // bytes), one just beyond 2^bits: any larger window finds it, and the peer's inflater would fail.
        const within = 2 ** Math.max(bits, 9) - 262;
        const messages = [...repeatsAt(within), ...repeatsAt(2 ** bits + 16)];
        for (const role of ['server', 'client'] as const) {
          const negotiated = (n: number): DeflateParams => (role === 'server' ? { ...DEFAULTS, serverMaxWindowBits: n } : { ...DEFAULTS, clientMaxWindowBits: n });
          for (const compressionWindowBits of [undefined, 15]) {
            const label = `${role}, ${bits} bits negotiated, compressionWindowBits ${compressionWindowBits}`;
            const options = { maxPayload: MiB, ...(compressionWindowBits === undefined ? {} : { compressionWindowBits }) };
            const payloads = await compressAll(new MessageCodec(negotiated(bits), role, options), messages);
            assert.deepEqual(await inflatesWith(bits, payloads), messages, label);
            // Whenever the negotiated window is the one used, it is used in full: the near repeat is found.
            const window = Math.min(bits, compressionWindowBits ?? 13);
            if (window === bits) assert.ok(payloads[1]!.length < within / 10, `${label}: the window is used, ${payloads[1]!.length} bytes`);
          }
          if (bits >= 9) {
            // The control: one bit more finds the far repeat, and the same inflater fails.
            const wider = await compressAll(new MessageCodec(negotiated(bits + 1), role, { maxPayload: MiB, compressionWindowBits: 15 }), messages);
            await assert.rejects(inflatesWith(bits, wider), /too far back/, `${role}, ${bits + 1} bits`);
          }
        }
      }
    });

    test('inflation keeps the negotiated window, not the compression one', { timeout: 30_000 }, async () => {
      const messages = repeatsAt(20_000);
      const peer = zlibDeflater(15);
      const ours = new MessageCodec(DEFAULTS, 'server', { maxPayload: MiB, compressionWindowBits: 9 });
      try {
        for (const message of messages) assert.deepEqual(await ours.decompress(await peer.deflate(message)), message);
      } finally {
        peer.close();
        ours.close();
      }
    });
  });

  describe('limits', () => {
    /** A message of 1 GiB of zeros: one flushed deflate piece repeated, about 1 MiB in all. */
    async function bomb(): Promise<Buffer> {
      const peer = zlibDeflater(15);
      try {
        const zeros = Buffer.alloc(MiB);
        const first = await peer.deflate(zeros);
        const rest = await peer.deflate(zeros);
        assert.deepEqual(await peer.deflate(zeros), rest, 'the deflate output of zeros is periodic');
        // Pieces of one stream, each a flush whose trailer the sender removed: put back all but the last.
        return Buffer.concat([first, ...Array<Buffer[]>(1023).fill([TRAILER, rest]).flat()]);
      } finally {
        peer.close();
      }
    }

    /** Counts the bytes every zlib inflate stream produces while `body` runs. */
    async function countingInflated(body: () => Promise<void>): Promise<number> {
      const prototype = zlib.InflateRaw.prototype as unknown as { push(chunk: Buffer | null): boolean };
      const push = prototype.push;
      let total = 0;
      prototype.push = function (this: unknown, chunk: Buffer | null) {
        total += chunk?.length ?? 0;
        return push.call(this, chunk);
      };
      try {
        await body();
      } finally {
        delete (prototype as Partial<typeof prototype>).push;
      }
      assert.equal(zlib.InflateRaw.prototype.push, push);
      return total;
    }

    test('a 1 GiB bomb stops at maxPayload with 1009, whether the window is kept or not', { timeout: 60_000 }, async () => {
      const payload = await bomb();
      assert.ok(payload.length < 1.1 * MiB);
      for (const serverNoContextTakeover of [false, true]) {
        const client = new MessageCodec({ ...DEFAULTS, serverNoContextTakeover }, 'client', { maxPayload: MiB });
        try {
          const inflated = await countingInflated(async () => {
            const err = await rejectsWith(client.decompress(payload), 1009);
            assert.match(err.message, /larger than 1048576 bytes/);
          });
          assert.ok(inflated <= MiB + 64 * 1024, `inflated ${inflated} bytes before stopping`);
          assert.equal(client.zlibStreams, 0, 'the inflate stream is freed');
          if (serverNoContextTakeover) {
            // Each message stands alone: the next one is fine.
            assert.equal(String(await client.decompress(Buffer.from('f248cdc9c90700', 'hex'))), 'Hello');
          } else {
            // The window the next message may refer to is gone.
            await rejectsWith(client.decompress(Buffer.from('f248cdc9c90700', 'hex')), 1009);
          }
        } finally {
          client.close();
        }
      }
    });

    test('maxPayload itself is allowed, one byte more is not', { timeout: 10_000 }, async () => {
      const { server, client, close } = pair({ ...DEFAULTS, serverNoContextTakeover: true }, 100_000);
      try {
        const exact = await server.compress(text(100_000));
        const over = await server.compress(text(100_001));
        assert.equal((await client.decompress(exact)).length, 100_000);
        await rejectsWith(client.decompress(over), 1009);
      } finally {
        close();
      }
    });

    test('corrupt data is 1007', { timeout: 10_000 }, async () => {
      const hello = Buffer.from('f248cdc9c90700', 'hex');
      for (const corrupt of [Buffer.from([0xff, 0xff, 0xff]), Buffer.from('f248cdc9c90701', 'hex').fill(0xfe, 2), Buffer.from([0x07, 0x00])]) {
        const client = new MessageCodec({ ...DEFAULTS, serverNoContextTakeover: true }, 'client', { maxPayload: MiB });
        try {
          const err = await rejectsWith(client.decompress(corrupt), 1007);
          assert.match(err.message, /Invalid compressed data/);
          assert.equal(String(await client.decompress(hello)), 'Hello');
        } finally {
          client.close();
        }
      }
      // A distance reaching before the start of the stream.
      const client = new MessageCodec(DEFAULTS, 'client', { maxPayload: MiB });
      try {
        await rejectsWith(client.decompress(Buffer.from('f200110000', 'hex')), 1007);
        await rejectsWith(client.decompress(hello), 1007);
      } finally {
        client.close();
      }
    });
  });

  describe('concurrency', () => {
    test('each direction keeps call order while both run at once', { timeout: 60_000 }, async () => {
      for (const noContextTakeover of [false, true]) {
        const params = { ...DEFAULTS, serverNoContextTakeover: noContextTakeover, clientNoContextTakeover: noContextTakeover };
        const { server, client, close } = pair(params);
        try {
          // Large first, small later: any reordering would show, and with context takeover would corrupt.
          const messages = Array.from({ length: 40 }, (_, i) => text(i === 0 ? 4 * MiB : 100 + i * 37));
          const settled: number[] = [];
          const compressed = await Promise.all(
            messages.map((message, i) => server.compress(message).then((payload) => (settled.push(i), payload))),
          );
          assert.deepEqual(settled, messages.map((_, i) => i));

          settled.length = 0;
          const outgoing = messages.map((message) => client.compress(message));
          const incoming = compressed.map((payload, i) => client.decompress(payload).then((message) => (settled.push(i), message)));
          assert.deepEqual(await Promise.all(incoming), messages);
          assert.deepEqual(settled, messages.map((_, i) => i));
          const back = await Promise.all(outgoing);
          for (const [i, payload] of back.entries()) assert.deepEqual(await server.decompress(payload), messages[i]);
          // Without context takeover nothing is held once the queues are empty.
          assert.equal(server.zlibStreams, noContextTakeover ? 0 : 2);
          assert.equal(client.zlibStreams, noContextTakeover ? 0 : 2);
        } finally {
          close();
        }
      }
    });

    test('an idle connection holds zlib streams only for a kept window', { timeout: 10_000 }, async () => {
      const params = { ...DEFAULTS, serverNoContextTakeover: true };
      const { server, client, close } = pair(params);
      try {
        assert.equal(server.zlibStreams, 0);
        const message = text(5000);
        assert.deepEqual(await client.decompress(await server.compress(message)), message);
        assert.deepEqual(await server.decompress(await client.compress(message)), message);
        // The server resets its sending window, the client keeps its own: each holds one stream, for the client's window.
        assert.equal(server.zlibStreams, 1);
        assert.equal(client.zlibStreams, 1);
      } finally {
        close();
      }
      assert.equal(server.zlibStreams, 0);
      assert.equal(client.zlibStreams, 0);
    });

    test('close rejects what is pending and frees the streams', { timeout: 10_000 }, async () => {
      const { server, client, close } = pair(DEFAULTS);
      const payload = await server.compress(text(MiB));
      const pending = [
        ...Array.from({ length: 5 }, () => client.compress(text(MiB))),
        ...Array.from({ length: 5 }, () => client.decompress(payload)),
      ];
      client.close();
      for (const result of await Promise.allSettled(pending)) {
        assert.equal(result.status, 'rejected');
        assert.match(String((result as PromiseRejectedResult).reason), /codec is closed/);
      }
      assert.equal(client.zlibStreams, 0);
      await assert.rejects(client.compress(Buffer.from('late')), /codec is closed/);
      close();
    });

    test('close rejects at once a message still waiting for the limiter', { timeout: 10_000 }, async () => {
      const busy = new MessageCodec(DEFAULTS, 'server', { maxPayload: MiB, concurrency: 1 });
      const waiting = new MessageCodec(DEFAULTS, 'server', { maxPayload: MiB, concurrency: 1 });
      try {
        const order: string[] = [];
        const first = busy.compress(text(4 * MiB)).then(() => order.push('busy done'));
        const second = waiting.compress(text(1000)).catch((err: Error) => order.push(err.message));
        await new Promise((resolve) => setImmediate(resolve));
        assert.equal(sharedLimiter(1).waiting, 1);
        waiting.close();
        await Promise.all([first, second]);
        assert.deepEqual(order, ['The permessage-deflate codec is closed', 'busy done']);
      } finally {
        busy.close();
        waiting.close();
      }
    });

    test('ZlibLimiter runs at most `concurrency` jobs, in FIFO order', { timeout: 10_000 }, async () => {
      const limiter = new ZlibLimiter(2);
      const started: number[] = [];
      const finish: Array<(fail: boolean) => void> = [];
      const outcome = (result: Promise<number>) => result.then(() => 'fulfilled', () => 'rejected');
      const results = Array.from({ length: 6 }, (_, i) =>
        outcome(limiter.run(
          () =>
            new Promise<number>((resolve, reject) => {
              started.push(i);
              finish[i] = (fail) => (fail ? reject(new Error(`job ${i}`)) : resolve(i));
            }),
        )),
      );
      const settle = () => new Promise((resolve) => setImmediate(resolve));
      await settle();
      assert.deepEqual(started, [0, 1]);
      assert.deepEqual([limiter.running, limiter.waiting], [2, 4]);
      finish[1]!(true); // a failed job frees its slot too
      await settle();
      assert.deepEqual(started, [0, 1, 2]);
      // A newcomer queues behind those already waiting.
      results.push(outcome(limiter.run(async () => (started.push(6), 6))));
      finish[0]!(false);
      finish[2]!(false);
      await settle();
      assert.deepEqual(started, [0, 1, 2, 3, 4]);
      finish[3]!(false);
      finish[4]!(false);
      await settle();
      assert.deepEqual(started, [0, 1, 2, 3, 4, 5, 6]);
      finish[5]!(false);
      assert.deepEqual(await Promise.all(results), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
      assert.deepEqual([limiter.running, limiter.waiting], [0, 0]);
      assert.throws(() => new ZlibLimiter(0), RangeError);
    });

    test('100 codecs with concurrency 2 never have more than 2 zlib jobs running', { timeout: 60_000 }, async () => {
      // Every zlib operation (a write or a flush) goes through ZlibBase#_transform, its callback ending it.
      const base = Object.getPrototypeOf(Object.getPrototypeOf(zlib.DeflateRaw.prototype)) as {
        _transform(chunk: Buffer, encoding: string, cb: (err?: Error | null) => void): void;
      };
      assert.ok(Object.hasOwn(base, '_transform'));
      const transform = base._transform;
      const limiter = sharedLimiter(2);
      let inFlight = 0;
      let maxInFlight = 0;
      let maxRunning = 0;
      let maxWaiting = 0;
      base._transform = function (this: unknown, chunk, encoding, cb) {
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        maxRunning = Math.max(maxRunning, limiter.running);
        maxWaiting = Math.max(maxWaiting, limiter.waiting);
        transform.call(this, chunk, encoding, (err) => {
          inFlight -= 1;
          cb(err);
        });
      };
      const codecs: MessageCodec[] = [];
      try {
        const peer = new MessageCodec(DEFAULTS, 'client', { maxPayload: MiB, concurrency: 2 });
        codecs.push(peer);
        const message = text(64 * 1024);
        const payload = await peer.compress(message);
        const jobs: Array<Promise<Buffer>> = [];
        for (let i = 0; i < 100; i++) {
          const codec = new MessageCodec({ ...DEFAULTS, clientNoContextTakeover: true }, 'server', { maxPayload: MiB, concurrency: 2 });
          codecs.push(codec);
          for (let j = 0; j < 3; j++) jobs.push(codec.compress(message));
          jobs.push(codec.decompress(Buffer.from(payload)));
        }
        const outputs = await Promise.all(jobs);
        outputs.forEach((output, i) => {
          if (i % 4 === 3) assert.deepEqual(output, message);
        });
        assert.equal(maxInFlight, 2, `at most 2 zlib operations at once, saw ${maxInFlight}`);
        assert.ok(maxRunning <= 2);
        assert.ok(maxWaiting > 0, 'jobs had to wait');
        assert.deepEqual([limiter.running, limiter.waiting], [0, 0]);
      } finally {
        base._transform = transform;
        for (const codec of codecs) codec.close();
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------

interface WsDeflate {
  offer(): Record<string, unknown>;
  accept(configurations: unknown[]): Record<string, unknown>;
  compress(data: Buffer, fin: boolean, callback: (err: Error | null, result?: Buffer) => void): void;
  decompress(data: Buffer, fin: boolean, callback: (err: Error | null, result?: Buffer) => void): void;
  cleanup(): void;
}
const require = createRequire(import.meta.url);
// ws's package exports hide lib/, so its files are required by path.
const wsLib = join(dirname(require.resolve('ws')), 'lib');
const WsPerMessageDeflate = require(join(wsLib, 'permessage-deflate.js')) as new (options: object) => WsDeflate;
const wsExtension = require(join(wsLib, 'extension.js')) as {
  parse(header: string): Record<string, unknown[]>;
  format(extensions: Record<string, unknown>): string;
};

function wsCall(ws: WsDeflate, method: 'compress' | 'decompress', data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => ws[method](data, true, (err, result) => (err ? reject(err) : resolve(result!))));
}

describe('interop with ws', () => {
  const block = randomBytes(300);
  const messages = [Buffer.from('Hello'), text(20_000), text(20_000), Buffer.concat([block, block]), randomBytes(4000), Buffer.alloc(0), text(MiB)];

  async function exchange(ours: MessageCodec, theirs: WsDeflate, label: string): Promise<void> {
    for (const message of messages) {
      assert.deepEqual(await wsCall(theirs, 'decompress', await ours.compress(message)), message, `${label}: ours to ws`);
      assert.deepEqual(await ours.decompress(await wsCall(theirs, 'compress', message)), message, `${label}: ws to ours`);
    }
  }

  // [our server's options, the ws client's options, the params we expect to agree on]
  const asServer: Array<[PerMessageDeflateOptions, object, Partial<DeflateParams>]> = [
    [{}, {}, {}],
    [{}, { clientMaxWindowBits: true }, {}],
    [{ serverNoContextTakeover: true, clientNoContextTakeover: true }, {}, { serverNoContextTakeover: true, clientNoContextTakeover: true }],
    [{ clientMaxWindowBits: 9 }, { serverMaxWindowBits: 10, clientMaxWindowBits: true }, { serverMaxWindowBits: 10, clientMaxWindowBits: 9 }],
    [{ serverMaxWindowBits: 8 }, { clientMaxWindowBits: 8, clientNoContextTakeover: true }, { serverMaxWindowBits: 8, clientMaxWindowBits: 8, clientNoContextTakeover: true }],
  ];
  for (const [ourOptions, wsOptions, expected] of asServer) {
    test(`our server ${JSON.stringify(ourOptions)}, ws client ${JSON.stringify(wsOptions)}`, { timeout: 30_000 }, async () => {
      const ws = new WsPerMessageDeflate({ ...wsOptions, isServer: false, maxPayload: 0 });
      const offer = wsExtension.format({ 'permessage-deflate': ws.offer() });
      const accepted = acceptOffer(offer, ourOptions);
      assert.ok(accepted, offer);
      assert.deepEqual(accepted.params, { ...DEFAULTS, ...expected });
      ws.accept(wsExtension.parse(accepted.response)['permessage-deflate']!);
      const ours = new MessageCodec(accepted.params, 'server', { maxPayload: 16 * MiB });
      try {
        await exchange(ours, ws, accepted.response);
      } finally {
        ours.close();
        ws.cleanup();
      }
    });
  }

  // [our client's options, the ws server's options, the params we expect to agree on]
  const asClient: Array<[PerMessageDeflateOptions, object, Partial<DeflateParams>]> = [
    [{}, {}, {}],
    [{ clientMaxWindowBits: true }, { clientMaxWindowBits: 10 }, { clientMaxWindowBits: 10 }],
    [{ serverNoContextTakeover: true, clientNoContextTakeover: true }, {}, { serverNoContextTakeover: true, clientNoContextTakeover: true }],
    [{ serverMaxWindowBits: 11, clientMaxWindowBits: 12 }, {}, { serverMaxWindowBits: 11, clientMaxWindowBits: 12 }],
    [{ clientMaxWindowBits: true }, { serverMaxWindowBits: 8, clientMaxWindowBits: 8, serverNoContextTakeover: true }, { serverMaxWindowBits: 8, clientMaxWindowBits: 8, serverNoContextTakeover: true }],
  ];
  for (const [ourOptions, wsOptions, expected] of asClient) {
    test(`our client ${JSON.stringify(ourOptions)}, ws server ${JSON.stringify(wsOptions)}`, { timeout: 30_000 }, async () => {
      const ws = new WsPerMessageDeflate({ ...wsOptions, isServer: true, maxPayload: 0 });
      const params = ws.accept(wsExtension.parse(makeOffer(ourOptions))['permessage-deflate']!);
      const response = wsExtension.format({ 'permessage-deflate': params });
      const agreed = acceptResponse(response, ourOptions);
      assert.deepEqual(agreed, { ...DEFAULTS, ...expected }, response);
      const ours = new MessageCodec(agreed, 'client', { maxPayload: 16 * MiB });
      try {
        await exchange(ours, ws, response);
      } finally {
        ours.close();
        ws.cleanup();
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------

describe('compressionWindowBits through WebSocketServer and WebSocket', () => {
  // 20,000 random bytes twice: the copy is found only with a window above 13 bits, halving the frame.
  const half = randomBytes(20_000);
  const message = Buffer.concat([half, half]);

  /** Bytes on the server's socket for one message each way, our client and server both with `options`. */
  async function wireBytes(options: PerMessageDeflateOptions): Promise<{ toClient: number; toServer: number }> {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: options });
    try {
      await within(new Promise<void>((resolve) => wss.on('listening', () => resolve())), WAIT_MS, 'listening');
      const { port } = wss.address() as { port: number };
      const accepted = new Promise<{ socket: Socket; received: Promise<Buffer> }>((resolve) => {
        wss.on('connection', (ws, req) => {
          resolve({ socket: req.socket, received: new Promise((got) => ws.once('message', (ev) => got(ev.rawData))) });
        });
      });
      const client = new WebSocket(`ws://127.0.0.1:${port}`, [], { perMessageDeflate: options });
      try {
        const clientGot = new Promise<Buffer>((resolve) => client.on('message', (ev) => resolve(ev.rawData)));
        await within(new Promise((resolve) => client.once('open', resolve)), WAIT_MS, 'open');
        const { socket, received } = await within(accepted, WAIT_MS, 'connection');
        const [read, written] = [socket.bytesRead, socket.bytesWritten];
        client.send(message);
        assert.deepEqual(await within(received, WAIT_MS, 'message to the server'), message);
        const toServer = socket.bytesRead - read;
        const [serverSide] = [...wss.clients];
        serverSide!.send(message);
        assert.deepEqual(await within(clientGot, WAIT_MS, 'message to the client'), message);
        return { toClient: socket.bytesWritten - written, toServer };
      } finally {
        client.terminate();
      }
    } finally {
      await new Promise((resolve) => wss.close(resolve));
    }
  }

  test('the option reaches both roles\' compressors', { timeout: 30_000 }, async () => {
    const byDefault = await wireBytes({});
    const wide = await wireBytes({ compressionWindowBits: 15 });
    for (const direction of ['toClient', 'toServer'] as const) {
      assert.ok(byDefault[direction] > message.length, `default, ${direction}: ${byDefault[direction]} bytes`);
      assert.ok(wide[direction] < half.length + 1000, `15 bits, ${direction}: ${wide[direction]} bytes`);
    }
  });
});
