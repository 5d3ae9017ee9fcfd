// The page `duplex serve` shows at "/" until the web UI arrives: a one-channel chat over the hub's
// WebSocket protocol. Self-contained (no external resources) so it works offline.
//
// ?channel=NAME picks the channel (default "lobby"); ?token=JWT is for a hub with --auth-secret and is
// offered as the bearer.<token> subprotocol, since browsers cannot set headers on a WebSocket.
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>duplex</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  code { background: #f2f2f2; padding: 0 .2em; }
  form { display: flex; gap: .5rem; }
  input { flex: 1; font: inherit; padding: .3rem; }
  #log { list-style: none; padding: .5rem; min-height: 8rem; border: 1px solid #ccc; font-family: monospace; }
  #log .note { color: #888; }
  #state { font-weight: bold; }
</style>
</head>
<body>
<h1>duplex</h1>
<p>duplex is a toolkit for full-duplex, real-time communication over sockets: a WebSocket engine
written from the wire up (RFC 6455 and RFC 7692), raw socket tools and a real-time hub.</p>
<p>This page subscribes to the hub channel <code id="channel"></code> over <code>/ws</code> and
publishes what you type to it, so everyone on the channel sees it, you included. Open it in two tabs,
or in a terminal: <code id="subscribe-command"></code> and <code id="publish-command"></code></p>
<p>Connection: <span id="state">connecting…</span></p>
<form id="send">
  <input id="text" autocomplete="off" placeholder="Type a message" aria-label="message">
  <button>Send</button>
</form>
<ul id="log"></ul>
<script>
  const params = new URLSearchParams(location.search);
  const channel = params.get('channel') || 'lobby';
  const token = params.get('token');
  const state = document.getElementById('state');
  const log = document.getElementById('log');
  const text = document.getElementById('text');
  document.getElementById('channel').textContent = channel;
  document.getElementById('subscribe-command').textContent = 'npx duplex subscribe ' + location.origin + ' ' + channel;
  document.getElementById('publish-command').textContent = 'npx duplex publish ' + location.origin + ' ' + channel + ' hello';
  let ws = null;
  // The last offset shown: a reconnect resumes after it, so nothing is lost or shown twice.
  let since = 0;
  let retry = 500;

  const show = (line, note) => {
    const item = document.createElement('li');
    item.textContent = line;
    if (note) item.className = 'note';
    log.append(item);
  };
  const describe = (data) =>
    data !== null && typeof data === 'object' && typeof data.text === 'string' ? data.text : JSON.stringify(data);

  function connect() {
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
    ws = token ? new WebSocket(url, ['bearer.' + token]) : new WebSocket(url);
    ws.onopen = () => {
      state.textContent = 'open';
      retry = 500;
      ws.send(JSON.stringify({ type: 'subscribe', channel, since }));
    };
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type === 'message' && m.channel === channel) {
        since = m.offset;
        show('#' + m.offset + ' ' + describe(m.data));
      } else if (m.type === 'subscribed' && m.recovered === false) {
        show('(some earlier messages are no longer in history)', true);
      } else if (m.type === 'error') {
        show('error: ' + m.code + ': ' + m.message, true);
      }
    };
    ws.onclose = (ev) => {
      state.textContent = 'closed (' + ev.code + (ev.reason ? ' ' + ev.reason : '') + ')';
      // 4401: the token is missing or no longer valid; retrying with the same one cannot help.
      if (ev.code === 4401) return;
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }

  document.getElementById('send').onsubmit = (ev) => {
    ev.preventDefault();
    if (ws && ws.readyState === WebSocket.OPEN && text.value) {
      ws.send(JSON.stringify({ type: 'publish', channel, data: { text: text.value } }));
    }
    text.value = '';
  };
  connect();
</script>
</body>
</html>
`;
