// The pages' connection to the hub: the client (served by the hub itself at /client/) opened with the
// transport and token the URL asks for, the status pill that shows its state, and controls that are
// disabled, with a visible reason, while it is down.
import { connect } from '/client/hub-client.js';
import { forcedTransport, params, TRANSPORT_NAMES } from './ui.js';

const STATE_TEXT = {
  connecting: (transport) => (transport ? `Connecting · ${transport}…` : 'Connecting…'),
  open: (transport) => `Connected · ${transport}`,
  reconnecting: () => 'Reconnecting…',
  offline: () => 'Offline: retrying',
  closed: () => 'Disconnected',
};

/** The hub client for this page, wired to the status pill. */
export function openHub() {
  const transport = forcedTransport();
  const token = params.get('token') || undefined;
  const client = connect(location.origin, { ...(transport ? { transport } : {}), ...(token ? { token } : {}) });
  const status = document.getElementById('status');
  const show = () => {
    const state = client.state;
    status.dataset.state = state === 'open' ? 'open' : state === 'closed' || state === 'offline' ? 'closed' : 'connecting';
    status.textContent = STATE_TEXT[state]?.(TRANSPORT_NAMES[client.transport] ?? client.transport) ?? state;
  };
  client.on('state', show);
  client.on('transport', show);
  show();
  // Leave at once (presence, the server's resources) rather than when the browser gets round to it; a
  // page restored from the back-forward cache then starts afresh.
  addEventListener('pagehide', () => client.close());
  addEventListener('pageshow', (event) => {
    if (event.persisted) location.reload();
  });
  return client;
}

/** True while the client can publish and subscribe. */
export function isOpen(client) {
  return client.state === 'open';
}

/**
 * Enables `controls` when `reason()` is null; otherwise disables them and shows the reason in `note`,
 * so a greyed-out button always says why. Returns the function that re-evaluates.
 */
export function gate(controls, note, reason) {
  const update = () => {
    const why = reason();
    for (const control of controls) control.disabled = why !== null;
    note.textContent = why ?? '';
  };
  update();
  return update;
}

/** The reason controls are off while the hub connection is down, or null when it is up. */
export function connectionReason(client) {
  switch (client.state) {
    case 'open': return null;
    case 'connecting': return 'Connecting to the hub…';
    case 'closed': return `Disconnected from the hub${client.lastError ? ` (${client.lastError.message})` : ''}. Reload the page to try again.`;
    default: return 'Not connected to the hub: reconnecting… Controls come back as soon as the connection does.';
  }
}
