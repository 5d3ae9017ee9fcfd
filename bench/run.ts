/**
 * `npm run bench`: runs every benchmark suite in turn.
 *
 *   node dist/bench/run.js [--quick]
 *
 * The micro-benchmarks (mask, utf8) are standalone scripts, so they run as child processes with
 * a time limit; a suite that is not built yet is skipped. The other suites run in this process and
 * spawn their own pinned servers and clients.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { collectOutput, spawnChild } from './child-processes.js';
import { runDeflate } from './deflate.js';
import { runEcho } from './echo.js';
import { runFanout } from './fanout.js';
import { runFanoutRedis } from './fanout-redis.js';
import { runFileTransfer } from './file-transfer.js';
import { runHandshakes } from './handshakes.js';
import { runIdleMemory } from './idle-memory.js';
import { runTcpEcho } from './tcp-echo.js';
import { runTransports } from './transports.js';

const SCRIPT_TIMEOUT_MS = 180_000;

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const quick = values.quick ?? false;

async function runScript(name: string): Promise<void> {
  const script = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
  if (!existsSync(script)) {
    console.log(`skipped: ${name}.js is not built`);
    return;
  }
  await collectOutput(spawnChild(process.execPath, [script]), SCRIPT_TIMEOUT_MS, (line) => console.log(line));
}

const suites: { name: string; run: () => Promise<unknown> }[] = [
  { name: 'mask', run: () => runScript('mask') },
  { name: 'utf8', run: () => runScript('utf8') },
  { name: 'echo', run: () => runEcho({ quick }) },
  { name: 'deflate', run: () => runDeflate({ quick }) },
  { name: 'handshakes', run: () => runHandshakes({ quick }) },
  { name: 'idle-memory', run: () => runIdleMemory({ quick }) },
  { name: 'tcp-echo', run: () => runTcpEcho({ quick }) },
  { name: 'file-transfer', run: () => runFileTransfer({ quick }) },
  { name: 'fanout', run: () => runFanout({ quick }) },
  { name: 'fanout-redis', run: () => runFanoutRedis({ quick }) },
  { name: 'transports', run: () => runTransports({ quick }) },
];

let failed = false;
for (const suite of suites) {
  console.log(`\n=== ${suite.name} ===`);
  try {
    await suite.run();
  } catch (error) {
    failed = true;
    console.error(`${suite.name} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}
process.exitCode = failed ? 1 : 0;
