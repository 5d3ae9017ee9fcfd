// The chat: a room is the channel chat.<room>; a message is {name, text, tab}. Joining replays the
// room's history, then shows live messages; the presence list comes from the hub (a WebSocket
// announces who we are; on the fallbacks, which have no presence of their own, the list is polled).
// The room and name live in the URL, so a reload rejoins the room and shows its history again.
import { connectionReason, gate, isOpen, openHub } from './connection.js';
import { clockTime, h, params, randomId, setUpTopBar } from './ui.js';

const ROOM = /^[A-Za-z0-9_-]{1,64}$/;
const NAME_KEY = 'duplex.chat.name';
const TAB_KEY = 'duplex.chat.tab';
const PRESENCE_POLL_MS = 5000;
// Closer than this to the bottom counts as reading the latest messages, so new ones scroll into view.
const STICKY_PX = 80;

setUpTopBar();

// Identifies this tab's messages and presence entry, and survives a reload of the tab.
const tab = sessionStorage.getItem(TAB_KEY) ?? randomId();
sessionStorage.setItem(TAB_KEY, tab);

const $ = (id) => document.getElementById(id);
const client = openHub();
let room = null;

const joinForm = $('join-form');
const nameInput = $('name');
const roomInput = $('room');
nameInput.value = (params.get('name') ?? localStorage.getItem(NAME_KEY) ?? '').slice(0, 32);
roomInput.value = params.get('room') ?? roomInput.value;
$('room-preview').textContent = roomInput.value;
roomInput.addEventListener('input', () => ($('room-preview').textContent = roomInput.value || 'room'));

joinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = nameInput.value.trim();
  if (!name || !ROOM.test(roomInput.value)) return;
  join(name, roomInput.value);
});
$('leave').addEventListener('click', () => leave());

const textInput = $('text');
const sendButton = $('send');
const updateControls = gate([textInput, sendButton], $('send-reason'), () => connectionReason(client));
client.on('state', updateControls);
client.on('transport', () => room?.renderMembers());

/** One joined room: its subscription, its message list and its presence list. */
class Room {
  constructor(name, me) {
    this.name = name;
    this.channel = `chat.${name}`;
    this.me = me;
    this.members = new Map();
    this.messages = $('messages');
    this.messages.replaceChildren(h('li', { class: 'empty', id: 'empty' }, 'No messages yet. Say hello!'));
    this.renderMembers();
    this.subscription = client.subscribe(this.channel, (message) => this.add(message), {
      since: 0,
      presence: { name: me, tab },
      onPresence: (event) => this.presenceEvent(event),
      onSubscribed: () => void this.refreshMembers(),
      onError: (error) => ($('send-error').textContent = `The hub refused this room: ${error.message}`),
    });
    this.presenceTimer = setInterval(() => {
      if (client.transport !== 'websocket') void this.refreshMembers();
    }, PRESENCE_POLL_MS);
  }

  close() {
    clearInterval(this.presenceTimer);
    this.subscription.unsubscribe();
  }

  add(message) {
    const { author, text, mine } = this.describe(message);
    const list = this.messages;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < STICKY_PX;
    $('empty')?.remove();
    list.append(h('li', { class: mine ? 'msg mine' : 'msg', 'data-offset': message.offset },
      h('div', { class: 'meta' },
        h('span', { class: 'author' }, author),
        h('time', { datetime: message.time, title: new Date(message.time).toLocaleString() }, clockTime(message.time))),
      h('div', { class: 'bubble' }, text)));
    if (atBottom || mine) list.scrollTop = list.scrollHeight;
  }

  /** Chat messages are {name, text}; anything else on the channel (a `duplex publish` from a shell) is shown as JSON. */
  describe(message) {
    const data = message.data;
    if (data && typeof data === 'object' && typeof data.text === 'string') {
      const author = typeof data.name === 'string' && data.name ? data.name : (message.publisher ?? 'anonymous');
      return { author, text: data.text, mine: data.tab === tab };
    }
    const text = typeof data === 'string' ? data : JSON.stringify(data);
    return { author: message.publisher ?? 'anonymous', text, mine: false };
  }

  async refreshMembers() {
    try {
      const members = await client.presence(this.channel);
      this.members = new Map(members.map((m) => [m.clientId, m]));
      this.renderMembers();
    } catch {
      // The next presence event, resubscription or poll brings the list up to date.
    }
  }

  presenceEvent(event) {
    const member = event.member;
    if (event.event === 'join') this.members.set(member.clientId, member);
    else if (event.event === 'leave') this.members.delete(member.clientId);
    this.renderMembers();
  }

  renderMembers() {
    const entries = [...this.members.values()].map((m) => ({
      name: typeof m.info?.name === 'string' && m.info.name ? m.info.name : (m.user ?? 'anonymous'),
      you: m.info?.tab === tab,
    }));
    entries.sort((a, b) => Number(b.you) - Number(a.you) || a.name.localeCompare(b.name));
    $('members').replaceChildren(...entries.map((e) => h('li', {}, e.name, e.you ? h('span', { class: 'you' }, '(you)') : null)));
    $('member-count').textContent = entries.length;
    $('presence-note').textContent = client.transport && client.transport !== 'websocket'
      ? 'You are reading over a fallback transport, which cannot announce you: only WebSocket clients are listed.'
      : '';
  }
}

function join(name, roomName) {
  localStorage.setItem(NAME_KEY, name);
  const url = new URL(location.href);
  url.searchParams.set('room', roomName);
  url.searchParams.set('name', name);
  history.replaceState(null, '', url);
  $('room-name').textContent = roomName;
  $('me').textContent = name;
  document.title = `#${roomName} · Chat · duplex`;
  $('join').hidden = true;
  $('room-view').hidden = false;
  room?.close();
  room = new Room(roomName, name);
  updateControls();
  $('text').focus();
}

function leave() {
  room?.close();
  room = null;
  const url = new URL(location.href);
  url.searchParams.delete('room');
  history.replaceState(null, '', url);
  document.title = 'Chat · duplex';
  $('room-view').hidden = true;
  $('join').hidden = false;
  roomInput.focus();
}

$('send-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = textInput.value.trim();
  if (!text || !room || !isOpen(client)) return;
  textInput.value = '';
  $('send-error').textContent = '';
  try {
    await client.publish(room.channel, { name: room.me, text, tab });
  } catch (err) {
    // Give the text back so nothing typed is lost.
    if (!textInput.value) textInput.value = text;
    $('send-error').textContent = `Not sent: ${err?.message ?? err}`;
  }
});

// A reload (or a shared link) with ?room= rejoins at once.
const initialName = nameInput.value.trim();
if (params.has('room') && initialName && ROOM.test(roomInput.value)) join(initialName, roomInput.value);
else nameInput.focus();
