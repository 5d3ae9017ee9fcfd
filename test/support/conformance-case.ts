// What every conformance case shares: one echo server per suite, one fresh raw connection per
// case, and Autobahn's closing expectations (a failed connection gets a close frame with the
// right code, then the server closes TCP; a healthy one ends with a clean close handshake).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, Op, encodeFrame, type FrameSpec, type Message } from './rawclient.js';
import { startEchoServer, type EchoServer, type EchoServerOptions } from './echo-servers.js';

const CASE_TIMEOUT_MS = 20_000;

export interface ServerHandle {
  readonly url: string;
}

/** Starts an echo server before the suite's cases and stops it after them. */
export function useEchoServer(options: EchoServerOptions = {}, start = startEchoServer): ServerHandle {
  let server: EchoServer | undefined;
  before(async () => {
    server = await start(options);
  });
  after(async () => {
    await server?.stop();
  });
  return {
    get url(): string {
      if (!server) throw new Error('echo server not started');
      return server.url;
    },
  };
}

/** Registers one case: a fresh connection, the body, then a check that the server kept to the protocol. */
export function conformanceCase(server: ServerHandle, name: string, body: (client: RawClient) => Promise<void>): void {
  test(name, { timeout: CASE_TIMEOUT_MS }, async () => {
    const client = await RawClient.connect(server.url);
    try {
      await body(client);
      assert.deepEqual(client.violations, [], `server broke the protocol: ${client.summary()}`);
    } finally {
      client.destroy();
    }
  });
}

export function text(data: string | Buffer): Message {
  return { opcode: Op.Text, data: Buffer.from(data) };
}

export function binary(data: Buffer): Message {
  return { opcode: Op.Binary, data };
}

/** Compares without dumping megabytes into the failure message. */
export function assertMessage(actual: Message, expected: Message, what = 'echo'): void {
  assert.equal(actual.opcode, expected.opcode, `${what}: opcode`);
  if (actual.data.equals(expected.data)) return;
  let at = 0;
  while (at < actual.data.length && actual.data[at] === expected.data[at]) at++;
  const sizes = `${actual.data.length} bytes received, ${expected.data.length} expected`;
  assert.fail(`${what}: ${sizes}, first difference at byte ${at}`);
}

export async function expectEcho(client: RawClient, expected: Message, timeoutMs?: number): Promise<void> {
  assertMessage(await client.nextMessage(timeoutMs), expected);
}

export async function expectPong(client: RawClient, payload: Buffer | string): Promise<void> {
  const frame = await client.nextFrame();
  assert.equal(frame.opcode, Op.Pong, `expected a pong; ${client.summary()}`);
  assert.deepEqual(frame.payload, Buffer.from(payload), 'pong payload must echo the ping');
}

/** The server must fail the connection: its next frame is a close with `code`, then it closes TCP. */
export async function expectFailure(client: RawClient, code: number | number[]): Promise<void> {
  const codes = Array.isArray(code) ? code : [code];
  const frame = await client.nextFrame();
  assert.equal(frame.opcode, Op.Close, `expected a close frame with ${codes.join(' or ')}; ${client.summary()}`);
  const got = client.closeReceived?.code ?? null;
  assert.ok(got !== null && codes.includes(got), `close code ${got}, expected ${codes.join(' or ')}`);
  await client.waitForServerTcpClose();
}

/** We start the close handshake: the server answers with a close frame (`accept` lists the codes it
 * may use; null is an empty close payload) and nothing else, then closes TCP itself. */
export async function closeNormally(
  client: RawClient,
  code = 1000,
  reason: Buffer | string = '',
  accept: (number | null)[] = [1000],
): Promise<void> {
  await client.sendClose(code, reason);
  await expectCloseReply(client, accept);
}

export async function expectCloseReply(client: RawClient, accept: (number | null)[] = [1000]): Promise<void> {
  const frame = await client.nextFrame();
  assert.equal(frame.opcode, Op.Close, `expected the close reply; ${client.summary()}`);
  const got = client.closeReceived?.code ?? null;
  assert.ok(accept.includes(got), `close reply code ${got}, expected one of ${accept.join(', ')}`);
  await client.waitForServerTcpClose();
}

/** How a sequence of frames is cut into TCP writes, as in Autobahn's "chops". */
export type Chop = 'one write' | 'frame-wise' | 'octet-wise';

export async function sendChopped(client: RawClient, frames: FrameSpec[], chop: Chop): Promise<void> {
  if (chop === 'one write') return client.sendAll(frames);
  if (chop === 'frame-wise') {
    for (const frame of frames) await client.send(frame);
    return;
  }
  await client.writeChunked(Buffer.concat(frames.map(encodeFrame)), 1);
}
