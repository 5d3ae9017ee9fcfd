// The live dashboard: the hub's /stats every second, as figures, a messages-per-second chart (SVG,
// drawn here: no chart library) and the channel table.
import { fetchStats, formatDuration, formatRate, h, metricTotal, setUpTopBar, svg } from './ui.js';

const REFRESH_MS = 1000;
const WINDOW_SECONDS = 300;
// The transport labels of the hub's metrics, and what to call them.
const METRIC_TRANSPORTS = { ws: 'WebSocket', sse: 'SSE', poll: 'long-poll' };
/** Pixels between the time labels' centres, at least. */
const MIN_LABEL_GAP = 64;
const PAD = { left: 44, right: 12, top: 12, bottom: 24 };

setUpTopBar();

const $ = (id) => document.getElementById(id);
const status = $('status');
let last = null;

async function refresh() {
  try {
    last = await fetchStats(WINDOW_SECONDS);
    render(last);
    status.dataset.state = 'open';
    status.textContent = 'Live';
  } catch {
    status.dataset.state = 'closed';
    status.textContent = 'Hub unreachable: retrying';
  }
  setTimeout(refresh, REFRESH_MS);
}

function render(stats) {
  $('connections').textContent = metricTotal(stats, 'duplex_connections');
  renderTransports(stats);
  const { messagesIn, messagesOut } = stats.rates;
  $('rate-in').textContent = formatRate(messagesIn.at(-1) ?? 0);
  $('rate-out').textContent = formatRate(messagesOut.at(-1) ?? 0);
  $('publishes').textContent = metricTotal(stats, 'duplex_publishes_total').toLocaleString();
  $('subscriptions').textContent = metricTotal(stats, 'duplex_subscriptions');
  $('uptime').textContent = formatDuration(stats.uptimeSeconds);
  drawChart(messagesIn, messagesOut);
  renderChannels(stats);
}

function renderTransports(stats) {
  const counts = Object.entries(METRIC_TRANSPORTS).map(([t, name]) => [t, name, metricTotal(stats, 'duplex_connections', 'transport', t)]);
  const most = Math.max(1, ...counts.map(([, , n]) => n));
  $('transports').replaceChildren(...counts.map(([transport, name, n]) => {
    const fill = h('span');
    fill.style.width = `${(100 * n) / most}%`;
    return h('div', { class: 'bar-row', 'data-transport': transport },
      h('span', {}, name),
      h('span', { class: 'bar', 'aria-hidden': 'true' }, fill),
      h('span', { class: 'n' }, String(n)));
  }));
}

function renderChannels(stats) {
  const rows = stats.channels.map((c) => h('tr', {},
    h('td', { class: 'channel' }, ...breakable(c.channel)),
    h('td', { class: 'num' }, String(c.subscribers)),
    h('td', { class: 'num optional' }, c.members === undefined ? '–' : String(c.members)),
    h('td', { class: 'num' }, c.offset === undefined ? '–' : c.offset.toLocaleString()),
    h('td', { class: 'num optional' }, c.history === undefined ? '–' : c.history.toLocaleString())));
  if (rows.length === 0) {
    rows.push(h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No channels yet. Open the chat or start a device.')));
  }
  $('channels').replaceChildren(...rows);
  $('channel-count').textContent = stats.channelCount;
  const more = $('channels-more');
  more.hidden = stats.channelCount <= stats.channels.length;
  more.textContent = `Showing the ${stats.channels.length} busiest of ${stats.channelCount} channels.`;
}

/** A channel name that may wrap after its dots, and only there. */
function breakable(channel) {
  return channel.split(/(?<=\.)/).flatMap((part, i) => (i === 0 ? [part] : [h('wbr'), part]));
}

/** The smallest of 1, 2, 5 × 10^n at or above `value`, so the axis reads in round numbers. */
function niceCeiling(value) {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * magnitude).find((n) => n >= value);
}

function drawChart(inRates, outRates) {
  const chart = $('chart');
  // Drawn in the element's own pixels, so text and lines keep their size at any width.
  const width = chart.clientWidth;
  const height = chart.clientHeight;
  if (width === 0 || height === 0) return;
  chart.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const n = inRates.length;
  const top = niceCeiling(Math.max(1, ...inRates, ...outRates));
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  const x = (i) => PAD.left + (n <= 1 ? plotW : (i * plotW) / (n - 1));
  const y = (v) => PAD.top + plotH - (v / top) * plotH;
  const parts = [];
  for (const v of [0, top / 2, top]) {
    parts.push(svg('line', { class: 'grid-line', x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v) }));
    const label = svg('text', { x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end' });
    label.textContent = Number(v.toPrecision(3)).toLocaleString();
    parts.push(label);
  }
  const minutes = Math.floor(n / 60);
  // A label every minute, or every few on a narrow chart, so they never run into each other.
  const every = Math.ceil(MIN_LABEL_GAP / (plotW / Math.max(1, n / 60)));
  for (let m = 0; m <= minutes; m += every) {
    const label = svg('text', { x: x(n - 1 - m * 60), y: height - 6, 'text-anchor': m === 0 ? 'end' : m === minutes ? 'start' : 'middle' });
    label.textContent = m === 0 ? 'now' : `−${m} min`;
    parts.push(label);
  }
  const points = (rates) => rates.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  parts.push(svg('polygon', { class: 'area in', points: `${x(0)},${y(0)} ${points(inRates)} ${x(n - 1)},${y(0)}` }));
  parts.push(svg('polyline', { class: 'line out', points: points(outRates) }));
  parts.push(svg('polyline', { class: 'line in', points: points(inRates) }));
  chart.replaceChildren(...parts);
  chart.setAttribute('aria-label',
    `Messages per second over the last ${Math.round(n / 60)} minutes: now ${formatRate(inRates.at(-1) ?? 0)} received, ` +
    `${formatRate(outRates.at(-1) ?? 0)} delivered; peak ${formatRate(Math.max(0, ...inRates, ...outRates))}.`);
}

addEventListener('resize', () => {
  if (last) drawChart(last.rates.messagesIn, last.rates.messagesOut);
});

refresh();
