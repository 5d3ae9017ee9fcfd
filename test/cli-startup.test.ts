// What `duplex` loads before it runs a command: only commander and the definition of that command, so
// that help, argument errors and short commands start fast. Checked through the modules a process
// resolves, never by timing.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CLI_PATH } from './support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'duplex-startup-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// A resolve hook, run in node's loader thread, that appends each module's URL to the file named by
// DUPLEX_TRACE; registered by the module given to --import.
const HOOKS = `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(process.env.DUPLEX_TRACE, result.url + '\\n');
  return result;
}`;
const REGISTER = `import { register } from 'node:module';
register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)});`;

interface Traced {
  code: number | null;
  stdout: string;
  stderr: string;
  modules: string[];
}

let runs = 0;

/** Runs `duplex ...args` with stdout and stderr on pipes; returns what it printed and every module it resolved. */
function traced(args: string[]): Promise<Traced> {
  const trace = join(dir, `trace-${++runs}`);
  const argv = ['--import', `data:text/javascript,${encodeURIComponent(REGISTER)}`, CLI_PATH, ...args];
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, argv, { env: { ...process.env, DUPLEX_TRACE: trace }, timeout: 10_000 }, (err, stdout, stderr) => {
      try {
        if (err && child.exitCode === null) throw err;
        resolve({ code: child.exitCode, stdout, stderr, modules: readFileSync(trace, 'utf8').split('\n').filter((url) => url !== '') });
      } catch (failure) {
        reject(failure);
      }
    });
    child.stdin?.end();
  });
}

/** Each module once: duplex's own by path under dist/src (cli/main.js), packages by name (commander). */
function names(modules: string[]): string[] {
  return [...new Set(modules.map((url) => /\/dist\/src\/(.*)$/.exec(url)?.[1] ?? /\/node_modules\/([^/]+)\//.exec(url)?.[1] ?? url))];
}

function assertLight(modules: string[]): void {
  const loaded = names(modules);
  // Proof that the hook saw the CLI at all, so that the absences below mean something.
  assert.ok(loaded.includes('cli/main.js') && loaded.includes('commander'), `trace: ${loaded.join(' ')}`);
  const heavy = loaded.filter((name) => name.startsWith('hub/') || name.startsWith('websocket/') || name === 'cli-progress');
  assert.deepEqual(heavy, [], `loaded: ${loaded.join(' ')}`);
}

describe('start-up', () => {
  test('file send --help loads the file command definition only', async () => {
    const run = await traced(['file', 'send', '--help']);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^Usage: duplex file send \[options\] <host:port> <path>\n/);
    assertLight(run.modules);
    assert.ok(!names(run.modules).includes('cli/file.js'), 'the transfer code was loaded for help');
  });

  test('a tcp argument error loads neither the hub nor the WebSocket layer', async () => {
    const run = await traced(['tcp', 'connect', 'localhost']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^error: command-argument value 'localhost' is invalid for argument 'host:port'\./);
    assertLight(run.modules);
  });

  test('file send without a terminal runs without the progress bar library', async () => {
    const run = await traced(['file', 'send', '127.0.0.1:1', join(dir, 'missing')]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^duplex: cannot read .*missing: no such file or directory\n$/);
    assert.ok(names(run.modules).includes('sockets/file-transfer.js'));
    assertLight(run.modules);
  });
});
