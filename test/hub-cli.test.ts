// The hub commands as a user runs them: `duplex serve`, `publish`, `subscribe` and `token` as spawned
// processes on 127.0.0.1 (the web app at "/" is tested in a browser by web.test.ts).
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { after, describe, test } from 'node:test';
import { killAll, runCli, type CliProcess, type Exit } from './support/cli.js';

const TEST_TIMEOUT = { timeout: 30_000 };
const SECRET = 'a-test-secret-that-is-long-enough-for-hs256';

after(killAll);

/** `duplex serve` on a free port of 127.0.0.1 with human logs; `args` come last, so they win. */
async function startHub(args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<{ cli: CliProcess; url: string }> {
  const cli = runCli(['serve', '--host', '127.0.0.1', '--port', '0', '--log', 'human', ...args], { env });
  const [, url] = await cli.waitFor('stdout', /^listening on (\S+)\n/m);
  return { cli, url: url! };
}

async function stop(cli: CliProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> {
  cli.signal(signal);
  return cli.exited();
}

/** Runs a command to its end. */
function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Exit> {
  return runCli(args, { env }).exited();
}

/** Exactly one line on stderr, with no stack trace. */
function assertOneLine(stderr: string, pattern: RegExp): void {
  assert.match(stderr, /^[^\n]*\n$/, `expected one line, got ${JSON.stringify(stderr)}`);
  assert.match(stderr, pattern);
}

async function getJson(url: string, headers: Record<string, string> = {}): Promise<unknown> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200, `GET ${url}`);
  return res.json();
}

/**
 * Waits until the hub counts `n` local subscribers on `channel`, so that a publish made next is one a
 * subscriber must see live. Polls the hub's channel list, a bounded number of times.
 */
async function waitForSubscribers(url: string, channel: string, n = 1, headers: Record<string, string> = {}): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const { channels } = (await getJson(`${url}/api/channels`, headers)) as { channels: Array<{ channel: string; subscribers: number }> };
    if ((channels.find((c) => c.channel === channel)?.subscribers ?? 0) >= n) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail(`${channel} never had ${n} subscriber(s) on ${url}`);
}

/** The JSON lines a process wrote, each parsed; fails on any line that is not JSON. */
function jsonLines(text: string): Array<Record<string, unknown>> {
  return text.split('\n').filter((line) => line !== '').map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      return assert.fail(`not a JSON line: ${JSON.stringify(line)}`);
    }
  });
}

async function listenTcp(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as AddressInfo).port;
}

function tokenClaims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('duplex serve (the hub)', () => {
  test('prints its settings and the real URL, answers /healthz and the page, exits 0 on SIGTERM', TEST_TIMEOUT, async () => {
    const { cli, url } = await startHub();
    assert.match(url, /^http:\/\/127\.0\.0\.1:[1-9]\d*$/);
    assert.match(cli.stdout, /^duplex \S+ hub\n/);
    assert.match(cli.stdout, /^ {2}engine +memory: 1000 messages per channel, kept 24h$/m);
    assert.match(cli.stdout, /^ {2}auth +off: anyone may subscribe and publish$/m);

    const health = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) });
    assert.equal(health.status, 200);
    assert.match(await health.text(), /^ok/);

    const page = await fetch(`${url}/`, { signal: AbortSignal.timeout(5000) });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const html = await page.text();
    assert.match(html, /<title>duplex/);
    assert.doesNotMatch(html, /(src|href)\s*=\s*["']?(https?:)?\/\//i, 'the page loads nothing from elsewhere');

    const exit = await stop(cli);
    assert.equal(exit.code, 0);
    assert.equal(exit.stderr, '');
    assert.match(exit.stdout, /^\d\d:\d\d:\d\d info shutting down signal=SIGTERM\n$/m);
  });

  test('logs JSON lines when stdout is not a terminal, never shows the secret, takes DUPLEX_* variables', TEST_TIMEOUT, async () => {
    const cli = runCli(['serve', '--history', '5'], {
      env: {
        DUPLEX_PORT: '0',
        DUPLEX_HOST: '127.0.0.1',
        DUPLEX_HISTORY: '9',
        DUPLEX_HISTORY_TTL: '90m',
        DUPLEX_AUTH_SECRET: SECRET,
        DUPLEX_API_KEYS: 'key-one, key-two',
        DUPLEX_ORIGINS: 'https://app.example,HTTP://Other.Example:80/',
        DUPLEX_MAX_MESSAGE_SIZE: '2KiB',
        DUPLEX_PUBLISH_RATE: '5:9',
        DUPLEX_MAX_SUBSCRIPTIONS: '7',
        DUPLEX_POLL_TIMEOUT: '1500ms',
      },
    });
    await cli.waitFor('stdout', /"msg":"listening"/);
    const exit = await stop(cli);
    assert.equal(exit.code, 0);
    assert.equal(exit.stderr, '');
    assert.ok(!exit.stdout.includes(SECRET), 'the secret is never printed');
    assert.ok(!exit.stdout.includes('key-one'), 'API keys are never printed');
    const records = jsonLines(exit.stdout);
    assert.deepEqual(records.map((r) => r.msg), ['config', 'listening', 'shutting down']);
    for (const record of records) {
      assert.equal(record.level, 'info');
      assert.ok(!Number.isNaN(Date.parse(String(record.time))), 'every record has a time');
    }
    const { time: _time, version, ...config } = records[0]!;
    assert.equal(typeof version, 'string');
    assert.deepEqual(config, {
      level: 'info',
      msg: 'config',
      port: 0,
      host: '127.0.0.1',
      engine: 'memory',
      history: 5, // the flag wins over DUPLEX_HISTORY
      historyTtl: '90m',
      authSecret: 'set',
      apiKeys: 2,
      origins: ['https://app.example', 'http://other.example'],
      maxMessageSize: 2048,
      publishRate: 5,
      publishBurst: 9,
      maxSubscriptions: 7,
      pollTimeout: '1.5s',
    });
    assert.match(String(records[1]!.url), /^http:\/\/127\.0\.0\.1:[1-9]\d*$/);
  });

  test('with no options but a free port it listens on localhost; DUPLEX_LOG=human is honoured', TEST_TIMEOUT, async () => {
    const cli = runCli(['serve'], { env: { DUPLEX_PORT: '0', DUPLEX_LOG: 'human' } });
    const [, url] = await cli.waitFor('stdout', /^listening on (\S+)\n/m);
    assert.match(url!, /^http:\/\/localhost:[1-9]\d*$/);
    const health = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) });
    assert.equal(health.status, 200);
    await health.arrayBuffer();
    assert.equal((await stop(cli, 'SIGINT')).code, 0);
  });

  test('history and the limits from the flags are in force', TEST_TIMEOUT, async () => {
    const { cli, url } = await startHub(['--history', '2', '--max-message-size', '64']);
    try {
      for (const n of [1, 2, 3]) assert.equal((await run(['publish', url, 'h', String(n)])).stdout, `${n}\n`);
      const sub = runCli(['subscribe', url, 'h', '--since', '0']);
      await sub.waitFor('stdout', /^2\n3\n$/);
      await sub.waitFor('stderr', /no longer reaches back to offset 0/);
      assert.equal((await stop(sub)).code, 0);

      const big = await run(['publish', url, 'h', 'x'.repeat(100)]);
      assert.equal(big.code, 1);
      assertOneLine(big.stderr, /^duplex: publish to h refused: 413 too_large: /);
    } finally {
      await stop(cli);
    }
  });

  test('a bad flag or variable value is one line on stderr and exit 1', TEST_TIMEOUT, async () => {
    const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [['serve', '--port', 'x'], {}, /port/],
      [['serve', '--history', 'lots'], {}, /--history/],
      [['serve', '--history-ttl', '5x'], {}, /duration/],
      [['serve', '--max-message-size', '0'], {}, /size/],
      [['serve', '--publish-rate', 'fast'], {}, /per second/],
      [['serve', '--max-subscriptions', '0'], {}, /1 or more/],
      [['serve', '--poll-timeout', '30d'], {}, /duration/],
      [['serve', '--origins', 'example.com'], {}, /not an origin/],
      [['serve', '--log', 'xml'], {}, /json, human|choices/i],
      [['serve', '--api-key', 'k'], {}, /--api-key needs --auth-secret/],
      [['serve'], { DUPLEX_PORT: 'eighty' }, /DUPLEX_PORT/],
      [['serve'], { DUPLEX_LOG: 'loud' }, /DUPLEX_LOG/],
      [['publish', 'ftp://127.0.0.1:1', 'c', 'm'], {}, /hub URL/],
      [['publish', 'http://127.0.0.1:1', 'no spaces', 'm'], {}, /channel/],
      [['subscribe', 'http://127.0.0.1:1', 'a..b'], {}, /channel/],
      [['subscribe', 'http://127.0.0.1:1', 'c', '--since', 'x'], {}, /--since/],
      [['token', '--secret', SECRET], {}, /--sub/],
      [['token', '--secret', SECRET, '--sub', 'a', '--publish', 'chat*'], {}, /pattern/],
      [['token', '--secret', SECRET, '--sub', 'a', '--ttl', 'never'], {}, /duration/],
    ];
    for (const [args, env, pattern] of cases) {
      const exit = await run(args, env);
      assert.equal(exit.code, 1, `${args.join(' ')} ${JSON.stringify(env)}`);
      assertOneLine(exit.stderr, pattern);
      assert.equal(exit.stdout, '', `${args.join(' ')} printed to stdout`);
    }
  });

  test('a port in use is one line and exit 1', TEST_TIMEOUT, async () => {
    const blocker = createTcpServer();
    const port = await listenTcp(blocker);
    try {
      const exit = await run(['serve', '--host', '127.0.0.1', '--port', String(port)]);
      assert.equal(exit.code, 1);
      assertOneLine(exit.stderr, new RegExp(`^duplex: cannot listen on 127\\.0\\.0\\.1:${port}: address already in use\n$`));
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});

describe('duplex publish and subscribe', () => {
  test('publish prints offsets; subscribe --since 0 replays the data as JSON lines, --json whole envelopes', TEST_TIMEOUT, async () => {
    const { cli, url } = await startHub();
    try {
      const published = [];
      for (const message of ['hello', '{"text":"hi"}', '42', '"quoted"', 'not {json']) {
        const exit = await run(['publish', url, 'chat.room1', message]);
        assert.equal(exit.stderr, '');
        assert.equal(exit.code, 0);
        published.push(exit.stdout);
      }
      assert.deepEqual(published, ['1\n', '2\n', '3\n', '4\n', '5\n']);

      const sub = runCli(['subscribe', url, 'chat.room1', '--since', '0']);
      await sub.waitFor('stdout', /^"hello"\n\{"text":"hi"\}\n42\n"quoted"\n"not \{json"\n$/);
      const exit = await stop(sub, 'SIGINT');
      assert.equal(exit.code, 0);
      assert.equal(exit.stderr, '');

      const json = runCli(['subscribe', `${url.replace('http', 'ws')}/ws`, 'chat.room1', '--since', '3', '--json']);
      const [lines] = await json.waitFor('stdout', /^(.*\n){2}$/);
      const envelopes = jsonLines(lines!);
      assert.deepEqual(envelopes.map((e) => [e.type, e.channel, e.offset, e.data]), [
        ['message', 'chat.room1', 4, 'quoted'],
        ['message', 'chat.room1', 5, 'not {json'],
      ]);
      assert.equal((await stop(json)).code, 0);
    } finally {
      await stop(cli);
    }
  });

  test('subscribe prints messages published after it subscribed; SIGTERM exits 0', TEST_TIMEOUT, async () => {
    const { cli, url } = await startHub();
    try {
      const sub = runCli(['subscribe', url, 'news']);
      await waitForSubscribers(url, 'news');
      await run(['publish', url, 'news', '{"n":1}']);
      await run(['publish', url, 'elsewhere', '{"n":2}']);
      await run(['publish', url, 'news', '{"n":3}']);
      await sub.waitFor('stdout', /^\{"n":1\}\n\{"n":3\}\n$/);
      const exit = await stop(sub);
      assert.equal(exit.code, 0);
      assert.equal(exit.stdout, '{"n":1}\n{"n":3}\n');
      assert.equal(exit.stderr, '');
    } finally {
      await stop(cli);
    }
  });

  test('subscribe resubscribes after the last offset when the hub comes back', TEST_TIMEOUT, async () => {
    const first = await startHub();
    const port = new URL(first.url).port;
    const sub = runCli(['subscribe', first.url, 'feed']);
    let second: { cli: CliProcess; url: string } | undefined;
    try {
      await waitForSubscribers(first.url, 'feed');
      await run(['publish', first.url, 'feed', 'one']);
      await sub.waitFor('stdout', /^"one"\n$/);
      assert.equal((await stop(first.cli)).code, 0);
      await sub.waitFor('stderr', /closed by server: 1001.*; reconnecting/);

      // The same port again: a new memory hub, whose offsets start over below the subscriber's.
      second = await startHub(['--port', port]);
      await waitForSubscribers(second.url, 'feed');
      await run(['publish', second.url, 'feed', 'two']);
      await sub.waitFor('stdout', /^"one"\n"two"\n$/);
      assert.match(sub.stderr, /history on feed no longer reaches back to offset 1/);
      assert.equal((await stop(sub)).code, 0);
    } finally {
      sub.signal('SIGKILL');
      if (second) await stop(second.cli);
    }
  });

  test('with --no-reconnect the end of the hub ends subscribe with one line', TEST_TIMEOUT, async () => {
    const { cli, url } = await startHub();
    const sub = runCli(['subscribe', url, 'feed', '--no-reconnect']);
    await waitForSubscribers(url, 'feed');
    assert.equal((await stop(cli)).code, 0);
    const exit = await sub.exited();
    assert.equal(exit.code, 0);
    assertOneLine(exit.stderr, /^duplex: closed by server: 1001/);
  });

  test('an unreachable hub, or a server that is not one, is one line and exit 1', TEST_TIMEOUT, async () => {
    const probe = createTcpServer();
    const port = await listenTcp(probe);
    await new Promise((resolve) => probe.close(resolve));
    const down = `http://127.0.0.1:${port}`;
    const publish = await run(['publish', down, 'c', 'm']);
    assert.equal(publish.code, 1);
    assertOneLine(publish.stderr, new RegExp(`^duplex: cannot publish to ${down}: connection refused\n$`));
    const subscribe = await run(['subscribe', down, 'c']);
    assert.equal(subscribe.code, 1);
    assertOneLine(subscribe.stderr, new RegExp(`^duplex: cannot subscribe to c at ws://127\\.0\\.0\\.1:${port}/ws: connection refused\n$`));

    const other = createHttpServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('hello'));
    const otherUrl = `http://127.0.0.1:${await listenTcp(other as unknown as Server)}`;
    try {
      const notHub = await run(['publish', otherUrl, 'c', 'm']);
      assert.equal(notHub.code, 1);
      assertOneLine(notHub.stderr, /did not answer like a duplex hub/);
      const noWs = await run(['subscribe', otherUrl, 'c']);
      assert.equal(noWs.code, 1);
      assertOneLine(noWs.stderr, /^duplex: cannot subscribe to c at /);
    } finally {
      other.closeAllConnections();
      await new Promise((resolve) => other.close(resolve));
    }
  });
});

describe('duplex token and a hub with an auth secret', () => {
  test('mints a signed token with the claims asked for', TEST_TIMEOUT, async () => {
    const exit = await run(['token', '--sub', 'alice', '--publish', 'chat.*', '--subscribe', '*', '--presence', 'chat.*,lobby', '--ttl', '2h', '--info', '{"name":"Alice"}'], {
      DUPLEX_AUTH_SECRET: SECRET,
    });
    assert.equal(exit.code, 0);
    assert.equal(exit.stderr, '');
    assert.match(exit.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const claims = tokenClaims(exit.stdout.trim());
    assert.deepEqual(
      { sub: claims.sub, publish: claims.publish, subscribe: claims.subscribe, presence: claims.presence, info: claims.info },
      { sub: 'alice', publish: ['chat.*'], subscribe: ['*'], presence: ['chat.*', 'lobby'], info: { name: 'Alice' } },
    );
    assert.equal(Number(claims.exp) - Number(claims.iat), 7200);
  });

  test('without a secret it is one line and exit 1; a short one is warned about', TEST_TIMEOUT, async () => {
    const missing = await run(['token', '--sub', 'a'], { DUPLEX_AUTH_SECRET: '' });
    assert.equal(missing.code, 1);
    assertOneLine(missing.stderr, /^duplex: a secret is required/);
    const weak = await run(['token', '--sub', 'a', '--secret', 'short']);
    assert.equal(weak.code, 0);
    assertOneLine(weak.stderr, /^duplex: warning: the secret is shorter than 32 bytes/);
    assert.match(weak.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
  });

  test('a token lets subscribe and publish in; no credential, or the wrong channel, is one line and exit 1', TEST_TIMEOUT, async () => {
    const { cli, url } = await startHub(['--api-key', 'backend-key'], { DUPLEX_AUTH_SECRET: SECRET });
    try {
      assert.match(cli.stdout, /^ {2}auth +secret set, 1 API key$/m);
      const minted = await run(['token', '--secret', SECRET, '--sub', 'alice', '--publish', 'chat.*', '--subscribe', 'chat.*']);
      const token = minted.stdout.trim();

      const sub = runCli(['subscribe', url, 'chat.room1', '--token', token]);
      await waitForSubscribers(url, 'chat.room1', 1, { authorization: `Bearer ${token}` });
      assert.equal((await run(['publish', url, 'chat.room1', 'by key', '--api-key', 'backend-key'])).stdout, '1\n');
      assert.equal((await run(['publish', url, 'chat.room1', 'by token'], { DUPLEX_TOKEN: token })).stdout, '2\n');
      await sub.waitFor('stdout', /^"by key"\n"by token"\n$/);
      assert.equal((await stop(sub)).code, 0);

      const anonymous = await run(['subscribe', url, 'chat.room1']);
      assert.equal(anonymous.code, 1);
      assertOneLine(anonymous.stderr, /^duplex: cannot subscribe to chat\.room1 at \S+: unauthorized: authentication required/);

      const forbidden = await run(['subscribe', url, 'news', '--token', token]);
      assert.equal(forbidden.code, 1);
      assertOneLine(forbidden.stderr, /^duplex: cannot subscribe to news: forbidden: /);

      const badToken = await run(['subscribe', url, 'chat.room1', '--token', `${token}x`]);
      assert.equal(badToken.code, 1);
      assertOneLine(badToken.stderr, /unauthorized: invalid token/);

      const noCredential = await run(['publish', url, 'chat.room1', 'x']);
      assert.equal(noCredential.code, 1);
      assertOneLine(noCredential.stderr, /^duplex: publish to chat\.room1 refused: 401 unauthorized: /);

      const wrongChannel = await run(['publish', url, 'news', 'x', '--token', token]);
      assert.equal(wrongChannel.code, 1);
      assertOneLine(wrongChannel.stderr, /^duplex: publish to news refused: 403 forbidden: /);
    } finally {
      await stop(cli);
    }
  });
});
