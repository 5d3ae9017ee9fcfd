// The page `duplex serve` shows at "/": self-contained (no external resources) so it works offline.
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
  #state { font-weight: bold; }
</style>
</head>
<body>
<h1>duplex</h1>
<p>duplex is a toolkit for full-duplex, real-time communication over sockets: a WebSocket engine
written from the wire up (RFC 6455 and RFC 7692), raw socket tools and, soon, a real-time hub.</p>
<p>This page talks to <code>/ws</code>, a broadcast room: every message goes to everyone connected,
you included. Open it in two tabs to see both sides.</p>
<p>Connection: <span id="state">connecting…</span></p>
<form id="send">
  <input id="text" autocomplete="off" placeholder="Type a message" aria-label="message">
  <button>Send</button>
</form>
<ul id="log"></ul>
<script>
  const state = document.getElementById('state');
  const log = document.getElementById('log');
  const text = document.getElementById('text');
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
  const show = (line) => {
    const item = document.createElement('li');
    item.textContent = line;
    log.append(item);
  };
  ws.onopen = () => { state.textContent = 'open'; };
  ws.onclose = (ev) => { state.textContent = 'closed (' + ev.code + ')'; };
  ws.onmessage = (ev) => show(typeof ev.data === 'string' ? ev.data : '[binary message]');
  document.getElementById('send').onsubmit = (ev) => {
    ev.preventDefault();
    if (ws.readyState === WebSocket.OPEN && text.value) ws.send(text.value);
    text.value = '';
  };
</script>
</body>
</html>
`;
