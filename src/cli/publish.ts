// `duplex publish URL CHANNEL MESSAGE`: one message through the hub's HTTP API, for scripts and
// backends. MESSAGE that parses as JSON is sent as that JSON value (`42`, `{"a":1}`, `"quoted"`);
// anything else is sent as a string. Prints the offset the hub gave the message.
//
// node:http rather than fetch: fetch refuses the ports browsers block (6000, 6667, …), and a hub may
// well listen on one of them.
import http from 'node:http';
import https from 'node:https';
import { CliError, describeFailure, oneLine } from './errors.js';
import type { HubUrl } from './hub-url.js';

export interface PublishOptions {
  token?: string;
  apiKey?: string;
  timeout: number;
}

export async function runPublish(hub: HubUrl, channel: string, message: string, options: PublishOptions): Promise<number> {
  const url = `${hub.base}/api/channels/${encodeURIComponent(channel)}/publish`;
  const headers: Record<string, string> = {
    'Content-Type': isJson(message) ? 'application/json' : 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(message)),
  };
  if (options.token !== undefined) headers.Authorization = `Bearer ${options.token}`;
  if (options.apiKey !== undefined) headers['X-API-Key'] = options.apiKey;
  let response: { status: number; body: string };
  try {
    response = await post(url, headers, message, options.timeout);
  } catch (err) {
    throw new CliError(`cannot publish to ${hub.base}: ${describeFailure(err)}`);
  }
  const body = parseJson(response.body);
  if (response.status !== 200) throw new CliError(`publish to ${channel} refused: ${response.status} ${describeRefusal(body)}`);
  const offset = (body as { offset?: unknown } | null)?.offset;
  if (typeof offset !== 'number') throw new CliError(`publish to ${channel}: the server at ${hub.base} did not answer like a duplex hub`);
  process.stdout.write(`${offset}\n`);
  return 0;
}

/** Limits what a server that is not a hub can make us hold in memory. */
const MAX_ANSWER_BYTES = 1 << 20;

function post(url: string, headers: Record<string, string>, body: string, timeout: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = (url.startsWith('https:') ? https : http).request(url, { method: 'POST', headers, timeout }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_ANSWER_BYTES) chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    request.on('timeout', () => request.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    request.on('error', reject);
    request.end(body);
  });
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** The hub answers errors as {error, message}; anything else (a proxy's page) is described by status only. */
function describeRefusal(body: unknown): string {
  const { error, message } = (body ?? {}) as { error?: unknown; message?: unknown };
  if (typeof error !== 'string') return '(not a duplex hub answer)';
  return typeof message === 'string' ? `${error}: ${oneLine(message)}` : error;
}
