/**
 * Where a process spent its time, from a `node --cpu-prof` profile: per function (name and file),
 * its self samples as a share of the busy samples (all but `(idle)`), the largest first.
 *
 *   node dist/bench/cpu-profile-summary.js FILE.cpuprofile [--top 25] [--last MS]
 *
 * --last MS keeps only the samples of the profile's last MS milliseconds: a benchmark server is
 * stopped right after its load, so that is the steady state, without start-up and connecting.
 *
 * Shares count samples, not the time between them: V8 samples on a wall-clock timer, so a process
 * that another one preempts (a hub node sharing its core with redis-server, say) gets one late
 * sample that spans the whole wait, and weighing samples by time would charge that wait to
 * whatever function it was in, typically the write that woke the other process. Counting keeps
 * the shares close to CPU time; the time-weighted figure is printed alongside.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  /** `function (file:line)`; the file is left out for the VM's own entries such as `(garbage collector)`. */
  name: string;
  samples: number;
  /** Of the busy samples. */
  share: number;
  /** Wall-clock milliseconds until the samples that followed (preemption included). */
  wallMs: number;
}

export interface ProfileSummary {
  busySamples: number;
  idleSamples: number;
  functions: SelfTime[];
}

export function summarizeProfile(profile: Profile, lastMs = Infinity): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, { samples: number; us: number }>();
  let idle = 0;
  let busy = 0;
  // Walking back from the end, the first sample still inside the last `lastMs` ms.
  let first = profile.samples.length;
  for (let us = 0; first > 0 && us <= lastMs * 1000; first--) us += profile.timeDeltas[first - 1] ?? 0;
  for (let i = first; i < profile.samples.length; i++) {
    const frame = byId.get(profile.samples[i]!)?.callFrame;
    if (!frame) continue;
    if (frame.functionName === '(idle)') {
      idle++;
      continue;
    }
    busy++;
    const name = frame.url
      ? `${frame.functionName || '(anonymous)'} (${basename(frame.url)}:${frame.lineNumber + 1})`
      : frame.functionName || '(anonymous)';
    const entry = self.get(name) ?? { samples: 0, us: 0 };
    entry.samples++;
    // A sample's time is the delta that follows it: until the next sample was taken.
    entry.us += Math.max(0, profile.timeDeltas[i + 1] ?? 0);
    self.set(name, entry);
  }
  const functions = [...self].map(([name, e]) => ({ name, samples: e.samples, share: busy === 0 ? 0 : e.samples / busy, wallMs: e.us / 1000 }));
  return { busySamples: busy, idleSamples: idle, functions: functions.sort((a, b) => b.samples - a.samples) };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values, positionals } = parseArgs({
    allowPositionals: true, options: { top: { type: 'string', default: '25' }, last: { type: 'string' } },
  });
  const top = Number(values.top);
  const last = values.last === undefined ? Infinity : Number(values.last);
  if (positionals.length !== 1 || !Number.isInteger(top) || top < 1 || !(last > 0)) {
    console.error('usage: cpu-profile-summary.js FILE.cpuprofile [--top N] [--last MS]');
    process.exit(2);
  }
  const summary = summarizeProfile(JSON.parse(readFileSync(positionals[0]!, 'utf8')) as Profile, last);
  console.log(`${summary.busySamples} busy samples, ${summary.idleSamples} idle; self samples as a share of busy, and their wall-clock time:`);
  for (const f of summary.functions.slice(0, top)) {
    console.log(`${(100 * f.share).toFixed(1).padStart(5)}%  ${f.wallMs.toFixed(0).padStart(7)} ms  ${f.name}`);
  }
}
