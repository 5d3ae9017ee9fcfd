// The remote-control console. Commands {id, action, args} go to device.<name>.cmd; the device answers
// on device.<name>.telemetry with {type: 'ack', id, ok, message} for each command and
// {type: 'telemetry', …} readings about every second. The device counts as online while its
// readings keep coming, which works the same on every transport.
import { connectionReason, gate, isOpen, openHub } from './connection.js';
import { clockTime, h, params, randomId, setUpTopBar, svg } from './ui.js';

const DEVICE = /^[A-Za-z0-9_-]{1,64}$/;
/** Without a reading for this long the device is taken to be offline. */
const STALE_MS = 5000;
const ACK_TIMEOUT_MS = 5000;
const LOG_LIMIT = 50;
const TRAIL_LIMIT = 200;
/** The map shows at least this many metres across. */
const MAP_MIN_SPAN = 20;
const KEYS = { w: 'forward', a: 'left', s: 'back', d: 'right', x: 'stop' };
const COMPASS = ['N', 'NE', 'E', 'SE', 'S', 'SW', 'W', 'NW'];

setUpTopBar();

const $ = (id) => document.getElementById(id);
const client = openHub();
const tab = randomId();

let device = null;
/** Commands waiting for their acknowledgement, by id. */
const pending = new Map();

const padButtons = [...document.querySelectorAll('.pad button')];
const commandInput = $('command');
const controls = [...padButtons, commandInput, $('command-send')];
const updateControls = gate(controls, $('control-reason'), () => connectionReason(client) ?? device?.offlineReason() ?? null);
client.on('state', updateControls);

/** The device being controlled: its telemetry subscription and what it last reported. */
class Device {
  constructor(name) {
    this.name = name;
    this.cmdChannel = `device.${name}.cmd`;
    this.telemetryChannel = `device.${name}.telemetry`;
    this.lastSeen = 0;
    this.trail = [];
    this.subscription = client.subscribe(this.telemetryChannel, (message) => this.receive(message), {
      onError: (error) => ($('control-reason').textContent = `The hub refused ${this.telemetryChannel}: ${error.message}`),
    });
    this.timer = setInterval(() => this.showPresence(), 1000);
  }

  close() {
    clearInterval(this.timer);
    this.subscription.unsubscribe();
  }

  get online() {
    return Date.now() - this.lastSeen < STALE_MS;
  }

  offlineReason() {
    return this.online ? null : `${this.name} is not online (no telemetry from it). Start it with the command above.`;
  }

  receive(message) {
    const data = message.data;
    if (!data || typeof data !== 'object') return;
    this.lastSeen = Date.now();
    if (data.type === 'ack') acknowledged(data);
    else if (data.type === 'telemetry') this.showTelemetry(data, message.time);
    this.showPresence();
  }

  showPresence() {
    const pill = $('device-pill');
    const online = this.online;
    pill.className = `pill ${online ? 'online' : 'offline'}`;
    pill.textContent = online ? `${this.name} is online` : `${this.name}: waiting for telemetry…`;
    $('device-help').hidden = online;
    updateControls();
  }

  showTelemetry(t, time) {
    const x = Number(t.x) || 0;
    const y = Number(t.y) || 0;
    const heading = Number(t.heading) || 0;
    $('t-position').textContent = `x ${x.toFixed(1)} m, y ${y.toFixed(1)} m`;
    $('t-heading').textContent = `${Math.round(heading)}° ${COMPASS[Math.round(heading / 45) % 8]}`;
    $('t-heading-arrow').style.transform = `rotate(${heading}deg)`;
    $('t-motion').textContent = t.motion === 'stopped' || !t.motion ? 'stopped' : `${t.motion} at ${t.speed} %`;
    const battery = Math.max(0, Math.min(100, Number(t.battery) || 0));
    $('t-battery').textContent = `${battery.toFixed(0)} %${t.charging ? ' (charging)' : ''}`;
    $('t-battery-meter').value = battery;
    $('t-lights').textContent = t.lights ? 'on' : 'off';
    $('t-updated').textContent = clockTime(time, true);
    $('cam-pan').textContent = t.camera?.pan ?? '–';
    $('cam-tilt').textContent = t.camera?.tilt ?? '–';
    this.trail.push([x, y]);
    if (this.trail.length > TRAIL_LIMIT) this.trail.shift();
    drawMap(this.trail, heading);
  }
}

function control(name) {
  device?.close();
  for (const entry of pending.values()) clearTimeout(entry.timer);
  pending.clear();
  device = new Device(name);
  const url = new URL(location.href);
  url.searchParams.set('device', name);
  history.replaceState(null, '', url);
  $('device').value = name;
  $('cmd-channel').textContent = device.cmdChannel;
  $('telemetry-channel').textContent = device.telemetryChannel;
  $('device-command').textContent = `npx duplex device --url ${location.origin} --name ${name}`;
  $('log').replaceChildren(h('li', { class: 'empty' }, 'Commands you send appear here with the device\'s answer.'));
  $('map').replaceChildren();
  for (const id of ['t-position', 't-heading', 't-motion', 't-battery', 't-lights', 't-updated']) $(id).textContent = '–';
  device.showPresence();
}

async function send(action, args = []) {
  if (!device || !isOpen(client)) return;
  const id = randomId();
  const words = [action, ...args].join(' ');
  const item = h('li', { class: 'pending', 'data-id': id },
    h('span', { class: 'mark', 'aria-hidden': 'true' }, '…'),
    h('span', { class: 'text' }, h('strong', {}, words), ' ', h('span', { class: 'detail' }, 'sent')),
    h('span', { class: 'detail' }, clockTime(new Date().toISOString(), true)));
  const log = $('log');
  log.querySelector('.empty')?.remove();
  log.prepend(item);
  while (log.children.length > LOG_LIMIT) log.lastElementChild.remove();
  const entry = { item, sent: performance.now(), timer: setTimeout(() => settle(id, false, 'no answer from the device'), ACK_TIMEOUT_MS) };
  pending.set(id, entry);
  try {
    await client.publish(device.cmdChannel, { id, action, args, from: tab });
  } catch (err) {
    settle(id, false, `not sent: ${err?.message ?? err}`);
  }
}

function acknowledged(ack) {
  if (typeof ack.id === 'string') settle(ack.id, ack.ok === true, String(ack.message ?? ''));
}

function settle(id, ok, message) {
  const entry = pending.get(id);
  if (!entry) return;
  pending.delete(id);
  clearTimeout(entry.timer);
  const ms = Math.round(performance.now() - entry.sent);
  entry.item.className = ok ? 'ok' : 'failed';
  entry.item.querySelector('.mark').textContent = ok ? '✓' : '✕';
  entry.item.querySelector('.text .detail').textContent = ok ? `${message} · ${ms} ms` : message;
}

function drawMap(trail, heading) {
  const map = $('map');
  const xs = trail.map((p) => p[0]);
  const ys = trail.map((p) => -p[1]); // north is up, SVG's y grows downwards
  const [cx, cy] = [xs[xs.length - 1], ys[ys.length - 1]];
  const span = Math.max(MAP_MIN_SPAN, ...xs.map((x) => 2.4 * Math.abs(x - cx)), ...ys.map((y) => 2.4 * Math.abs(y - cy)));
  map.setAttribute('viewBox', `${cx - span / 2} ${cy - span / 2} ${span} ${span}`);
  const step = 10 ** Math.floor(Math.log10(span / 2));
  const grid = [];
  for (let gx = Math.ceil((cx - span / 2) / step) * step; gx <= cx + span / 2; gx += step) {
    grid.push(svg('line', { class: 'grid-line', x1: gx, y1: cy - span / 2, x2: gx, y2: cy + span / 2, 'vector-effect': 'non-scaling-stroke' }));
  }
  for (let gy = Math.ceil((cy - span / 2) / step) * step; gy <= cy + span / 2; gy += step) {
    grid.push(svg('line', { class: 'grid-line', x1: cx - span / 2, y1: gy, x2: cx + span / 2, y2: gy, 'vector-effect': 'non-scaling-stroke' }));
  }
  const trailLine = svg('polyline', {
    class: 'trail', points: xs.map((x, i) => `${x},${ys[i]}`).join(' '), 'vector-effect': 'non-scaling-stroke',
  });
  const size = span / 20;
  const car = svg('polygon', {
    class: 'car',
    points: `0,${-size} ${size * 0.7},${size * 0.8} 0,${size * 0.4} ${-size * 0.7},${size * 0.8}`,
    transform: `translate(${cx} ${cy}) rotate(${heading})`,
  });
  map.replaceChildren(...grid, trailLine, car);
  map.setAttribute('aria-label', `Track of the device: now at x ${xs[xs.length - 1].toFixed(1)} m, y ${(-cy).toFixed(1)} m, heading ${Math.round(heading)}°`);
}

for (const button of padButtons) {
  button.addEventListener('click', () => send(button.dataset.action, button.dataset.arg ? [button.dataset.arg] : []));
}

$('command-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const words = commandInput.value.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return;
  commandInput.value = '';
  send(words[0].toLowerCase(), words.slice(1));
});

$('device-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const name = $('device').value.trim();
  if (DEVICE.test(name)) control(name);
});

// Driving from the keyboard, unless the keys are meant for a text field.
document.addEventListener('keydown', (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  if (event.target instanceof HTMLElement && event.target.closest('input, textarea, select')) return;
  const action = KEYS[event.key.toLowerCase()];
  const button = action && padButtons.find((b) => b.dataset.action === action);
  if (!button || button.disabled) return;
  event.preventDefault();
  button.click();
});

const initial = params.get('device');
control(initial && DEVICE.test(initial) ? initial : 'car1');
