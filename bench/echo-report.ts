/** The echo benchmark's results as markdown: one table per scenario, then the ratios of medians. */
import type { ContenderSummary, EchoReport } from './echo.js';

const integer = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const percent = (fraction: number): string => (Number.isFinite(fraction) ? `${Math.round(fraction * 100)}%` : 'n/a');
const decimal = (n: number, digits: number): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

function range(summary: ContenderSummary): string {
  const values = summary.samples.flatMap((s) => (s.messagesPerSecond === undefined ? [] : [s.messagesPerSecond]));
  if (values.length === 0) return 'n/a';
  return `${integer(Math.min(...values))}–${integer(Math.max(...values))}`;
}

function contenderRow(summary: ContenderSummary): string {
  const ok = summary.samples.filter((s) => s.error === undefined).length;
  const disturbed = summary.samples.filter((s) => s.disturbed).length;
  const cells = [
    summary.name,
    integer(summary.medianMessagesPerSecond),
    decimal(summary.medianMegabytesPerSecond, 1),
    range(summary),
    percent(summary.medianServerCpu),
    percent(summary.medianLoadCpu),
    percent(summary.medianOtherCpu),
    `${ok}/${summary.samples.length}`,
    String(disturbed),
  ];
  return `| ${cells.join(' | ')} |`;
}

function ratioTable(report: EchoReport): string[] {
  const names = Object.keys(report.scenarios[0]?.ratios ?? {});
  const header = `| ratio of medians | ${report.scenarios.map((s) => s.scenario.title.split(',')[0]).join(' | ')} |`;
  const rule = `|---|${report.scenarios.map(() => '---:').join('|')}|`;
  const rows = names.map((name) => {
    const cells = report.scenarios.map((s) => {
      const ratio = s.ratios[name];
      return ratio === null || ratio === undefined ? 'n/a' : ratio.toFixed(2);
    });
    return `| ${name} | ${cells.join(' | ')} |`;
  });
  return [header, rule, ...rows];
}

function failures(report: EchoReport): string[] {
  const lines: string[] = [];
  for (const { scenario, contenders } of report.scenarios) {
    for (const summary of contenders) {
      for (const sample of summary.samples) {
        if (sample.error !== undefined) {
          lines.push(`- ${scenario.title.split(',')[0]} ${summary.name} round ${sample.round + 1}: ${sample.error}`);
        }
      }
    }
  }
  return lines.length === 0 ? [] : ['', 'Failed runs:', ...lines];
}

export function echoMarkdown(report: EchoReport): string {
  const lines = [
    `Echo throughput, ${report.date.slice(0, 10)}: ${report.machine}, Node ${report.node}`,
    `${report.rounds} rounds × (${report.warmupMs} ms warm-up + ${report.durationMs} ms window); ${report.pinning}`,
    ...report.notes,
  ];
  for (const { scenario, contenders } of report.scenarios) {
    lines.push(
      '',
      `${scenario.title}`,
      '',
      '| contender | msgs/s (median) | MB/s (median) | msgs/s min–max | server CPU | load CPU | other CPU | ok runs | disturbed |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...contenders.map(contenderRow),
    );
  }
  lines.push('', ...ratioTable(report), ...failures(report));
  return lines.join('\n');
}
