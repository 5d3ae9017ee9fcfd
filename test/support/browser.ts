// Headless Chromium for the interop tests, and a typed handle on the page's `window.peer`
// (test/support/pages/peer.js), which drives the browser's native WebSocket.
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { chromium, type Browser, type Page } from 'playwright-core';
import { within, type MessageSummary } from './interop.js';

const CHROMIUM_PATH = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const LAUNCH_TIMEOUT_MS = 20_000;
const PAGE_TIMEOUT_MS = 5_000;
const CLOSE_TIMEOUT_MS = 5_000;

const PAGES_DIR = new URL('../../../test/support/pages/', import.meta.url);
const PAGE_FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/peer.js': { file: 'peer.js', type: 'text/javascript; charset=utf-8' },
};

/** Serves the peer page; the test's http server hands it every non-upgrade request. */
export async function servePage(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const entry = PAGE_FILES[new URL(req.url ?? '/', 'http://localhost').pathname];
  if (!entry) {
    res.writeHead(404).end();
    return;
  }
  const body = await readFile(new URL(entry.file, PAGES_DIR));
  res.writeHead(200, { 'content-type': entry.type, 'cache-control': 'no-store' }).end(body);
}

/** What the page reports for a received message; `as` is how the browser typed binary data. */
export interface PageMessageSummary extends MessageSummary {
  as?: 'arraybuffer' | 'blob';
}

export interface CloseSummary {
  code: number;
  reason: string;
  wasClean: boolean;
}

export type OpenResult =
  | { id: number; protocol: string; extensions: string }
  | { id: number; failed: CloseSummary; errors: number };

export type SendSpec =
  | { text: string }
  | { json: unknown }
  | { base64: string }
  | { blob: string }
  | { pattern: 'text' | 'binary'; size: number; asBlob?: boolean };

/** One native WebSocket inside the page. */
export class PageSocket {
  constructor(
    private readonly page: Page,
    readonly id: number,
  ) {}

  send(spec: SendSpec): Promise<void> {
    return call(this.page, 'send', this.id, spec);
  }

  /** Sends every message within one task of the page, back to back. */
  sendAll(specs: SendSpec[]): Promise<void> {
    return call(this.page, 'sendAll', this.id, specs);
  }

  next(): Promise<PageMessageSummary> {
    return call(this.page, 'next', this.id);
  }

  close(code?: number, reason?: string): Promise<void> {
    return call(this.page, 'close', this.id, code, reason);
  }

  /** The close event, and how many error events preceded it. */
  closed(): Promise<CloseSummary & { errors: number }> {
    return call(this.page, 'closed', this.id);
  }
}

export interface BrowserPeer {
  /** `target` is a path on the page's host, or a whole ws:// URL. */
  open(target: string, protocols?: string[], binaryType?: 'blob' | 'arraybuffer'): Promise<OpenResult>;
  socket(id: number): PageSocket;
  close(): Promise<void>;
}

// `window` is not typed in this Node project, hence the one untyped hop into the page.
// page.evaluate itself never times out, so every call is bounded here.
function call<T>(page: Page, method: string, ...args: unknown[]): Promise<T> {
  const result = page.evaluate(
    ([name, params]) => (globalThis as any).peer[name as string](...(params as unknown[])),
    [method, args] as const,
  ) as Promise<T>;
  return within(result, PAGE_TIMEOUT_MS, `page peer.${method}(${JSON.stringify(args).slice(0, 200)})`);
}

// Should closing hang, Playwright still kills the browsers it launched when this process exits.
async function closeBrowser(browser: Browser): Promise<void> {
  await within(browser.close(), CLOSE_TIMEOUT_MS, 'closing Chromium');
}

/**
 * Launches Chromium and opens `pageUrl`. `chromium.launch` gives every launch a fresh
 * temporary profile and deletes it on close, so no state leaks between runs.
 */
export async function launchBrowserPeer(pageUrl: string): Promise<BrowserPeer> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: CHROMIUM_ARGS,
    headless: true,
    timeout: LAUNCH_TIMEOUT_MS,
  });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(PAGE_TIMEOUT_MS);
    await page.goto(pageUrl);
    await page.waitForFunction(() => 'peer' in globalThis);
    return {
      open: (target, protocols, binaryType) => call(page, 'open', target, protocols, binaryType),
      socket: (id) => new PageSocket(page, id),
      close: () => closeBrowser(browser),
    };
  } catch (error) {
    await closeBrowser(browser);
    throw error;
  }
}
