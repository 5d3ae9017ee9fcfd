// A real nginx (Debian's) in front of hub nodes, running the documented configuration: the site file
// docs/deploy/nginx.conf with only its upstream addresses, its listen address and its log directory
// swapped for the test's, inside a minimal main config whose pid file, logs and temporary files are
// in a temporary directory. Listens on a free port of 127.0.0.1. Stopped by PID, never by name.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './websocket-harness.js';

/** dist/test/support/nginx.js → docs/deploy/nginx.conf */
const DEPLOY_CONFIG_PATH = fileURLToPath(new URL('../../../docs/deploy/nginx.conf', import.meta.url));

const NGINX_BIN = existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
// A free port can be taken by someone else between our probe and nginx's bind: try another.
const BIND_ATTEMPTS = 3;

interface SiteSubstitutions {
  /** host:port of each node, in place of the documented servers. */
  upstreams: string[];
  /** What the server block listens on, in place of `listen 80;`. */
  listen: string;
  /** Directory for the access log, in place of /var/log/nginx. */
  logDir: string;
}

/**
 * The documented site with the test's addresses. Fails when the file no longer has the shape this
 * relies on, so the documentation cannot drift away from what the test runs.
 */
function siteConfig(template: string, { upstreams, listen, logDir }: SiteSubstitutions): string {
  if (upstreams.length === 0) throw new Error('at least one upstream server is needed');
  const upstream = /^upstream duplex_nodes \{\n[\s\S]*?\n\}$/m.exec(template);
  if (!upstream) throw new Error(`${DEPLOY_CONFIG_PATH}: no "upstream duplex_nodes { … }" block`);
  const serverLine = /^( *)server +\S+( [^;\n]*)?;\n/gm;
  const documented = [...upstream[0].matchAll(serverLine)];
  if (documented.length < 2) throw new Error(`${DEPLOY_CONFIG_PATH}: the upstream block should show at least two servers`);
  const [, indent = '', parameters = ''] = documented[0]!;
  const servers = upstreams.map((address) => `${indent}server ${address}${parameters};\n`).join('');
  let first = true;
  const block = upstream[0].replace(serverLine, () => {
    const replacement = first ? servers : '';
    first = false;
    return replacement;
  });
  return replaceOnce(
    replaceOnce(template.replace(upstream[0], block), /^( *)listen 80;$/m, `$1listen ${listen};`, 'an active "listen 80;"'),
    /^( *access_log +)\/var\/log\/nginx\//m,
    `$1${logDir}/`,
    'an active "access_log /var/log/nginx/…"',
  );
}

function replaceOnce(text: string, pattern: RegExp, replacement: string, what: string): string {
  const global = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`);
  const count = [...text.matchAll(global)].length;
  if (count !== 1) throw new Error(`${DEPLOY_CONFIG_PATH}: expected exactly one ${what}, found ${count}`);
  return text.replace(pattern, replacement);
}

export class Nginx {
  private child: ChildProcess | null = null;
  /** What nginx printed before its error log was open. */
  private output = '';

  private constructor(readonly port: number, private readonly dir: string) {}

  /** Starts nginx with the documented site in front of `upstreams` (host:port each). */
  static async start(upstreams: string[]): Promise<Nginx> {
    const template = readFileSync(DEPLOY_CONFIG_PATH, 'utf8');
    for (let attempt = 1; ; attempt++) {
      const dir = mkdtempSync(join(tmpdir(), 'duplex-nginx-'));
      const nginx = new Nginx(await freePort(), dir);
      try {
        nginx.writeConfig(template, upstreams);
        await nginx.launch();
        return nginx;
      } catch (err) {
        const busy = err instanceof Error && err.message.includes('Address already in use');
        if (!busy || attempt >= BIND_ATTEMPTS) throw err;
      }
    }
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The access log so far, in the documented format (one line per request, with upstream=ADDR). */
  accessLog(): string {
    const file = join(this.dir, 'duplex.access.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }

  /** nginx's error log so far (warnings and errors), to explain a failure. */
  errorLog(): string {
    return readIfExists(join(this.dir, 'error.log'));
  }

  /** Fast shutdown (SIGTERM to the master, which stops its workers), then removes its files. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      // Read before the master goes: if it has to be killed, its workers would outlive it.
      const workers = childPids(child.pid!);
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const stopped = await Promise.race([
        exited.then(() => true),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), STOP_TIMEOUT_MS))),
      ]);
      clearTimeout(timer);
      if (!stopped) {
        for (const pid of [child.pid!, ...workers]) killQuietly(pid);
        await exited;
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private writeConfig(template: string, upstreams: string[]): void {
    const dir = this.dir;
    writeFileSync(join(dir, 'duplex.conf'), siteConfig(template, { upstreams, listen: `127.0.0.1:${this.port}`, logDir: dir }));
    const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `    ${kind}_temp_path ${dir}/${kind}_temp;`);
    writeFileSync(join(dir, 'nginx.conf'), [
      // Workers of a root master drop to `nobody`, who cannot enter our private temporary directory.
      ...(process.getuid?.() === 0 ? ['user root;'] : []),
      'worker_processes 2;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log warn;`,
      'events {',
      '    worker_connections 512;',
      '}',
      'http {',
      ...temp,
      `    include ${dir}/duplex.conf;`,
      '}',
      '',
    ].join('\n'));
  }

  private async launch(): Promise<void> {
    const dir = this.dir;
    const child = spawn(NGINX_BIN, ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log'), '-g', 'daemon off;'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout!.setEncoding('utf8').on('data', (t: string) => (this.output += t));
    child.stderr!.setEncoding('utf8').on('data', (t: string) => (this.output += t));
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await accepts(this.port))) {
      const failed = await Promise.race([spawnError, new Promise<null>((r) => setTimeout(() => r(null), 50))]);
      if (failed || child.exitCode !== null || Date.now() > deadline) {
        const log = this.output + readIfExists(join(dir, 'error.log'));
        await this.stop();
        throw new Error(`nginx did not start on port ${this.port}: ${failed?.message ?? log.trim()}`);
      }
    }
  }
}

/** The children of a process (nginx's workers), from /proc; empty where there is no /proc. */
function childPids(pid: number): number[] {
  const text = readIfExists(`/proc/${pid}/task/${pid}/children`);
  return text.split(' ').filter((s) => s !== '').map(Number);
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function readIfExists(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}
