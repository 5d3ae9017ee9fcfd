// What every page shares: the query parameters that pick the transport and token, the top bar's
// transport picker and links, the hub's stats, and small DOM and formatting helpers.

export const params = new URLSearchParams(location.search);

// The client's names for its transports. The hub's metrics say "ws" where the client says "websocket".
export const TRANSPORT_NAMES = { websocket: 'WebSocket', sse: 'Server-Sent Events', poll: 'long-polling' };

// Query parameters that describe the connection, kept when moving between pages.
const CONNECTION_PARAMS = ['transport', 'token'];

/** The transport the URL forces (?transport=ws|sse|poll), or undefined to let the client choose. */
export function forcedTransport() {
  const transport = params.get('transport') === 'ws' ? 'websocket' : params.get('transport');
  return transport && Object.hasOwn(TRANSPORT_NAMES, transport) ? transport : undefined;
}

/** The top bar's transport picker and page links, which carry ?transport and ?token along. */
export function setUpTopBar() {
  const select = document.getElementById('transport-select');
  if (select) {
    const forced = forcedTransport();
    select.value = forced === 'websocket' ? 'ws' : (forced ?? '');
    select.addEventListener('change', () => {
      const url = new URL(location.href);
      if (select.value) url.searchParams.set('transport', select.value);
      else url.searchParams.delete('transport');
      location.assign(url);
    });
  }
  for (const link of document.querySelectorAll('.nav a, a.tile')) {
    const url = new URL(link.href);
    for (const name of CONNECTION_PARAMS) if (params.has(name)) url.searchParams.set(name, params.get(name));
    link.href = url.pathname + url.search;
  }
}

/** An element with attributes and children (strings become text, never HTML). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') element.className = value;
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  element.append(...children.filter((child) => child !== null && child !== undefined));
  return element;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg(tag, attributes = {}) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

export function clockTime(iso, seconds = false) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', ...(seconds ? { second: '2-digit' } : {}) });
}

/** A random id, unique enough to tell this tab's messages and commands from others'. */
export function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The stats the hub serves for the dashboard; the token, if any, goes along. */
export async function fetchStats(seconds) {
  const token = params.get('token');
  const response = await fetch(`/stats${seconds ? `?seconds=${seconds}` : ''}`, {
    cache: 'no-store',
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
  if (!response.ok) throw new Error(`the hub answered ${response.status}`);
  return response.json();
}

/** The sum of a metric's samples, optionally only those whose `label` is `value`. */
export function metricTotal(stats, name, label, value) {
  const metric = stats.metrics[name];
  if (!metric) return 0;
  return metric.values.reduce((sum, s) => (label && s.labels[label] !== value ? sum : sum + s.value), 0);
}

export function formatDuration(seconds) {
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function formatRate(value) {
  if (value >= 100) return Math.round(value).toLocaleString();
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(value === 0 ? 0 : 2);
}
