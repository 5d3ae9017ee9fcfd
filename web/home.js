// The home page: links to the demos, a few live figures from the hub's stats, and terminal commands
// that talk to the same hub. It opens no hub connection of its own; the figures come from /stats.
import { fetchStats, formatDuration, formatRate, metricTotal, setUpTopBar } from './ui.js';

const REFRESH_MS = 2000;

setUpTopBar();

const origin = location.origin;
document.getElementById('cmd-subscribe').textContent = `npx duplex subscribe ${origin} chat.lobby`;
document.getElementById('cmd-publish').textContent =
  `npx duplex publish ${origin} chat.lobby '{"name":"terminal","text":"hello from a shell"}'`;
document.getElementById('cmd-device').textContent = `npx duplex device --url ${origin} --name car1`;

const status = document.getElementById('status');

async function refresh() {
  try {
    const stats = await fetchStats(5);
    const rates = stats.rates.messagesOut;
    document.getElementById('fig-connections').textContent = metricTotal(stats, 'duplex_connections');
    document.getElementById('fig-channels').textContent = stats.channelCount;
    document.getElementById('fig-rate').textContent = formatRate(rates[rates.length - 1] ?? 0);
    document.getElementById('fig-uptime').textContent = formatDuration(stats.uptimeSeconds);
    status.dataset.state = 'open';
    status.textContent = 'Hub is up';
  } catch {
    status.dataset.state = 'closed';
    status.textContent = 'Hub unreachable';
  }
  setTimeout(refresh, REFRESH_MS);
}

refresh();
