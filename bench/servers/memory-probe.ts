/**
 * Lets the harness read a server's memory: a line `MEMORY` on stdin is answered on stdout by
 * `MEMORY <json>` (MemoryReading) after forced garbage collection, so the figures hold live objects
 * only. Needs node --expose-gc.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

export interface MemoryReading {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  /** Memory of C++ objects bound to JS objects, Buffers' backing stores included. */
  external: number;
  arrayBuffers: number;
  /** Open connections the server tracks. */
  connections: number;
}

/** Two full collections with a turn between: the first may queue finalizers that free more. */
async function collectGarbage(): Promise<void> {
  if (typeof gc !== 'function') throw new Error('run the server with --expose-gc');
  gc();
  await nextTurn();
  gc();
}

export function answerMemoryRequests(connections: () => number): void {
  let pending = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (text: string) => {
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      if (line.trim() !== 'MEMORY') continue;
      void collectGarbage().then(() => {
        const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
        const reading: MemoryReading = { rss, heapUsed, heapTotal, external, arrayBuffers, connections: connections() };
        console.log(`MEMORY ${JSON.stringify(reading)}`);
      });
    }
  });
}
