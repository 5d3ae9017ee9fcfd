// The event objects and the listener registry of src/websocket/events.ts, without any socket.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Blob } from 'node:buffer';
import { CloseEvent, ErrorEvent, MessageEvent, WsEvent } from '../src/index.js';
import { EventHost } from '../src/websocket/events.js';
import { uncaughtExceptions } from './support/websocket-harness.js';

interface TestEvents {
  [type: string]: (...args: any[]) => void;
  ping: (event: WsEvent, ...extra: unknown[]) => void;
  pong: (event: WsEvent) => void;
}

/** A host with an `onping` handler property, as WebSocket has `onmessage`. */
class Host extends EventHost<TestEvents> {
  get onping() { return this.getHandler('ping'); }
  set onping(fn) { this.setHandler('ping', fn); }
}

/** Dispatches one ping and returns what the listeners recorded. */
function dispatch(host: Host, log: string[]): string[] {
  log.length = 0;
  host.emit('ping', new WsEvent('ping', host));
  return [...log];
}

describe('MessageEvent', () => {
  test('text is decoded on first access and then cached', () => {
    const raw = Buffer.from('hello');
    const ev = new MessageEvent('target', raw, false);
    raw.write('j');
    assert.equal(ev.data, 'jello', 'nothing was decoded before the first access');
    raw.write('y');
    assert.equal(ev.data, 'jello', 'the first decoding is kept');
    assert.equal(ev.rawData, raw);
    assert.equal(ev.isBinary, false);
    assert.equal(ev.type, 'message');
    assert.equal(ev.target, 'target');
  });

  test('text ignores binaryType', () => {
    for (const type of ['nodebuffer', 'arraybuffer', 'blob'] as const) {
      assert.equal(new MessageEvent(null, Buffer.from('ü'), false, type).data, 'ü');
    }
  });

  test('nodebuffer (the default) hands out rawData itself', () => {
    const raw = Buffer.from([1, 2, 3]);
    const ev = new MessageEvent(null, raw, true);
    assert.equal(ev.data, raw);
  });

  test('arraybuffer is a copy of exactly the payload, made once', () => {
    const backing = Buffer.from([9, 9, 1, 2, 3, 9]);
    const raw = backing.subarray(2, 5);
    const ev = new MessageEvent(null, raw, true, 'arraybuffer');
    const data = ev.data;
    assert.ok(data instanceof ArrayBuffer);
    assert.equal(data.byteLength, 3);
    assert.deepEqual([...new Uint8Array(data)], [1, 2, 3]);
    raw[0] = 0;
    assert.deepEqual([...new Uint8Array(data)], [1, 2, 3], 'the copy does not share memory with the payload');
    assert.equal(ev.data, data, 'the same ArrayBuffer on every access');
  });

  test('blob is a Blob of the payload, made once', async () => {
    const ev = new MessageEvent(null, Buffer.from('blob bytes'), true, 'blob');
    const data = ev.data;
    assert.ok(data instanceof Blob);
    assert.equal(data.size, 10);
    assert.equal(await data.text(), 'blob bytes');
    assert.equal(ev.data, data);
  });
});

describe('CloseEvent and ErrorEvent', () => {
  test('CloseEvent carries code, reason and wasClean', () => {
    const ev = new CloseEvent('target', 4001, 'bye', true);
    assert.deepEqual([ev.type, ev.target, ev.code, ev.reason, ev.wasClean], ['close', 'target', 4001, 'bye', true]);
    assert.ok(ev instanceof WsEvent);
  });

  test('ErrorEvent carries the error and its message', () => {
    const error = new Error('went wrong');
    const ev = new ErrorEvent('target', error);
    assert.deepEqual([ev.type, ev.target, ev.error, ev.message], ['error', 'target', error, 'went wrong']);
    assert.ok(ev instanceof WsEvent);
  });

  test('a WsEvent without a target has target null', () => {
    assert.equal(new WsEvent('open').target, null);
  });
});

describe('EventHost', () => {
  test('on, once and off; emit passes extra arguments, calls with this = host, returns whether anyone listened', () => {
    const host = new Host();
    const calls: unknown[][] = [];
    let self: unknown;
    const always = function (this: unknown, ...args: unknown[]) {
      self = this;
      calls.push(['always', ...args]);
    };
    host.on('ping', always);
    host.once('ping', (...args: unknown[]) => calls.push(['once', ...args]));
    const event = new WsEvent('ping', host);
    assert.equal(host.emit('ping', event, 'extra', 2), true);
    host.emit('ping', event);
    assert.deepEqual(calls, [['always', event, 'extra', 2], ['once', event, 'extra', 2], ['always', event]]);
    assert.equal(self, host);
    host.off('ping', always);
    assert.equal(host.listenerCount('ping'), 0);
    assert.equal(host.emit('ping', event), false);
  });

  test('an error event nobody listens to is not thrown', () => {
    const host = new EventHost();
    assert.equal(host.emit('error', new ErrorEvent(host, new Error('unheard'))), false);
  });

  test('addEventListener: duplicates ignored, once, handleEvent, null ignored; removeEventListener', () => {
    const host = new Host();
    const log: string[] = [];
    const fn = () => log.push('fn');
    const object = {
      handleEvent(this: unknown, ev: WsEvent) {
        log.push(this === object ? `object:${ev.type}` : 'object with the wrong this');
      },
    };
    host.addEventListener('ping', fn);
    host.addEventListener('ping', fn);
    host.addEventListener('ping', () => log.push('once'), { once: true });
    host.addEventListener('ping', object);
    host.addEventListener('ping', null);
    assert.deepEqual(dispatch(host, log), ['fn', 'once', 'object:ping']);
    assert.deepEqual(dispatch(host, log), ['fn', 'object:ping']);
    host.removeEventListener('ping', fn);
    host.removeEventListener('ping', object);
    host.removeEventListener('ping', null);
    assert.deepEqual(dispatch(host, log), []);
  });

  test('a once listener added again after it fired is called again', () => {
    const host = new Host();
    const log: string[] = [];
    const fn = () => log.push('fn');
    host.addEventListener('ping', fn, { once: true });
    host.addEventListener('ping', fn, { once: true });
    assert.deepEqual(dispatch(host, log), ['fn']);
    host.addEventListener('ping', fn, { once: true });
    assert.deepEqual(dispatch(host, log), ['fn']);
    assert.deepEqual(dispatch(host, log), []);
  });

  test('addEventListener and on registrations of one function are separate', () => {
    const host = new Host();
    const log: string[] = [];
    const fn = () => log.push('fn');
    host.on('ping', fn);
    host.addEventListener('ping', fn);
    assert.deepEqual(dispatch(host, log), ['fn', 'fn']);
    host.removeEventListener('ping', fn);
    assert.deepEqual(dispatch(host, log), ['fn']);
    host.off('ping', fn);
    assert.deepEqual(dispatch(host, log), []);
  });

  test('a listener added during a dispatch is not called by it', () => {
    const host = new Host();
    const log: string[] = [];
    host.addEventListener('ping', () => {
      log.push('first');
      host.addEventListener('ping', () => log.push('added'));
    }, { once: true });
    host.addEventListener('ping', () => log.push('second'));
    assert.deepEqual(dispatch(host, log), ['first', 'second']);
    assert.deepEqual(dispatch(host, log), ['second', 'added']);
  });

  test('a listener removed by an earlier one during a dispatch is not called by it (DOM semantics)', {
  }, () => {
    const host = new Host();
    const log: string[] = [];
    const second = () => log.push('second');
    host.addEventListener('ping', () => {
      log.push('first');
      host.removeEventListener('ping', second);
    });
    host.addEventListener('ping', second);
    assert.deepEqual(dispatch(host, log), ['first']);
  });

  test('once() of a function that is also registered with on() leaves the on() registration in place', {
  }, () => {
    const host = new Host();
    const log: string[] = [];
    const fn = () => log.push('fn');
    host.on('ping', fn);
    host.once('ping', fn);
    assert.deepEqual(dispatch(host, log), ['fn', 'fn']);
    assert.deepEqual(dispatch(host, log), ['fn']);
    assert.deepEqual(dispatch(host, log), ['fn']);
  });

  test('throwing listeners: later listeners still run, each error is rethrown on a later tick', async () => {
    const host = new Host();
    const log: string[] = [];
    const uncaught = uncaughtExceptions(2);
    host.on('ping', () => {
      throw new Error('function listener failed');
    });
    host.addEventListener('ping', {
      handleEvent() {
        throw new Error('handleEvent failed');
      },
    });
    host.on('ping', () => log.push('after'));
    host.emit('ping', new WsEvent('ping'));
    assert.deepEqual(log, ['after'], 'nothing thrown synchronously, the last listener ran');
    assert.deepEqual((await uncaught).map((err) => err.message), ['function listener failed', 'handleEvent failed']);
  });
});

describe('handler properties', () => {
  test('start null; setting registers, replacing keeps one handler in its place, null removes', () => {
    const host = new Host();
    const log: string[] = [];
    assert.equal(host.onping, null);
    host.addEventListener('ping', () => log.push('before'));
    const first = () => log.push('first');
    const second = () => log.push('second');
    host.onping = first;
    host.addEventListener('ping', () => log.push('after'));
    assert.equal(host.onping, first);
    assert.deepEqual(dispatch(host, log), ['before', 'first', 'after']);

    host.onping = second;
    assert.equal(host.onping, second);
    assert.deepEqual(dispatch(host, log), ['before', 'second', 'after']);
    assert.equal(host.listenerCount('ping'), 3);

    host.onping = null;
    assert.equal(host.onping, null);
    assert.deepEqual(dispatch(host, log), ['before', 'after']);

    host.onping = first;
    assert.deepEqual(dispatch(host, log), ['before', 'after', 'first'], 'a handler set anew goes last');
  });

  test('a non-function value removes the handler, as the browser treats it as null', () => {
    const host = new Host();
    const log: string[] = [];
    host.onping = () => log.push('handler');
    (host as unknown as { onping: unknown }).onping = 'not a function';
    assert.equal(host.onping, null);
    assert.deepEqual(dispatch(host, log), []);
  });

  test('the handler is independent of on() and addEventListener() registrations of the same function', () => {
    const host = new Host();
    const log: string[] = [];
    const fn = () => log.push('fn');
    host.addEventListener('ping', fn);
    host.onping = fn;
    assert.deepEqual(dispatch(host, log), ['fn', 'fn']);
    host.onping = null;
    assert.deepEqual(dispatch(host, log), ['fn']);
  });
});
