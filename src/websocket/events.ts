// The events a WebSocket dispatches, shaped like the browser's, and a small listener registry that serves
// both `addEventListener` and Node-style `on`. Unlike Node's EventEmitter, an `error` event nobody listens
// to is not thrown, and a listener that throws does not break the dispatch or the connection: the
// exception is rethrown on its own tick, as a browser reports it.

export type BinaryType = 'nodebuffer' | 'arraybuffer' | 'blob';

export class WsEvent {
  constructor(readonly type: string, readonly target: unknown = null) {}
}

export class MessageEvent extends WsEvent {
  private decoded: unknown = undefined;

  constructor(
    target: unknown,
    /** The payload exactly as received. */
    readonly rawData: Buffer,
    readonly isBinary: boolean,
    private readonly binaryType: BinaryType = 'nodebuffer',
  ) {
    super('message', target);
  }

  /** A string for text; for binary a Buffer, ArrayBuffer or Blob as `binaryType` said on arrival. */
  get data(): string | Buffer | ArrayBuffer | Blob {
    if (this.decoded === undefined) this.decoded = this.decode();
    return this.decoded as string | Buffer | ArrayBuffer | Blob;
  }

  private decode(): string | Buffer | ArrayBuffer | Blob {
    const raw = this.rawData;
    if (!this.isBinary) return raw.toString('utf8');
    if (this.binaryType === 'arraybuffer') {
      return raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length) as ArrayBuffer;
    }
    if (this.binaryType === 'blob') return new Blob([raw]);
    return raw;
  }
}

export class CloseEvent extends WsEvent {
  constructor(target: unknown, readonly code: number, readonly reason: string, readonly wasClean: boolean) {
    super('close', target);
  }
}

export class ErrorEvent extends WsEvent {
  readonly message: string;
  constructor(target: unknown, readonly error: Error) {
    super('error', target);
    this.message = error.message;
  }
}

// eslint-style `any` is deliberate here: the map of each host gives the real types.
type ListenerFunction = (...args: any[]) => void;
export type EventMap = Record<string, ListenerFunction>;
export type Listener = ListenerFunction | { handleEvent(event: any): void };

interface Entry {
  listener: Listener;
  once: boolean;
  /** Registered through addEventListener, which ignores a second registration of the same listener. */
  dom: boolean;
  /** Set when removed, so that a dispatch already under way skips it, as the DOM does. */
  removed?: boolean;
}

function call(listener: Listener, self: unknown, event: unknown, rest: unknown[]): void {
  try {
    if (typeof listener !== 'function') listener.handleEvent(event);
    else if (rest.length === 0) listener.call(self, event);
    else listener.call(self, event, ...rest);
  } catch (err) {
    process.nextTick(() => {
      throw err;
    });
  }
}

export class EventHost<Events extends EventMap = EventMap> {
  // Created on first use: an idle connection nobody listens to should cost no maps.
  private listeners: Map<string, Entry[]> | null = null;
  private handlers: Map<string, ListenerFunction> | null = null;

  on<K extends keyof Events & string>(type: K, listener: Events[K]): this {
    this.add(type, { listener, once: false, dom: false });
    return this;
  }

  once<K extends keyof Events & string>(type: K, listener: Events[K]): this {
    this.add(type, { listener, once: true, dom: false });
    return this;
  }

  off<K extends keyof Events & string>(type: K, listener: Events[K]): this {
    this.remove(type, listener, false);
    return this;
  }

  addEventListener<K extends keyof Events & string>(
    type: K, listener: Events[K] | { handleEvent: Events[K] } | null, options?: boolean | { once?: boolean },
  ): void {
    if (!listener) return;
    const list = this.listeners?.get(type);
    if (list?.some((e) => e.dom && e.listener === listener)) return;
    const once = typeof options === 'object' && options !== null && options.once === true;
    this.add(type, { listener, once, dom: true });
  }

  removeEventListener<K extends keyof Events & string>(type: K, listener: Events[K] | { handleEvent: Events[K] } | null): void {
    if (listener) this.remove(type, listener, true);
  }

  listenerCount(type: string): number {
    return this.listeners?.get(type)?.length ?? 0;
  }

  /** Calls the listeners of `type` in registration order; extra arguments go to Node-style listeners. */
  emit<K extends keyof Events & string>(type: K, ...args: Parameters<Events[K]>): boolean {
    const [event, ...rest] = args as unknown[];
    const list = this.listeners?.get(type);
    if (!list || list.length === 0) return false;
    // A copy keeps the iteration stable if a listener adds or removes listeners.
    for (const entry of list.length === 1 ? list : list.slice()) {
      if (entry.removed) continue;
      if (entry.once) this.removeEntry(type, entry);
      call(entry.listener, this, event, rest);
    }
    return true;
  }

  /** The `onmessage`-style handler properties, which keep their place among the listeners. */
  protected getHandler<K extends keyof Events & string>(type: K): Events[K] | null {
    return (this.handlers?.get(type) as Events[K] | undefined) ?? null;
  }

  protected setHandler<K extends keyof Events & string>(type: K, handler: Events[K] | null): void {
    const old = this.handlers?.get(type);
    const valid = typeof handler === 'function';
    if (old) {
      const entry = this.listeners?.get(type)?.find((e) => e.listener === old && !e.dom);
      if (valid && entry) {
        entry.listener = handler!;
        this.handlers!.set(type, handler!);
        return;
      }
      this.handlers!.delete(type);
      this.remove(type, old, false);
    }
    if (!valid) return;
    (this.handlers ??= new Map()).set(type, handler!);
    this.add(type, { listener: handler!, once: false, dom: false });
  }

  private add(type: string, entry: Entry): void {
    this.listeners ??= new Map();
    const list = this.listeners.get(type);
    if (list) list.push(entry);
    else this.listeners.set(type, [entry]);
  }

  private remove(type: string, listener: Listener, dom: boolean): void {
    const entry = this.listeners?.get(type)?.find((e) => e.listener === listener && e.dom === dom);
    if (entry) this.removeEntry(type, entry);
  }

  private removeEntry(type: string, entry: Entry): void {
    const list = this.listeners!.get(type)!;
    const index = list.indexOf(entry);
    if (index < 0) return;
    list.splice(index, 1);
    entry.removed = true;
  }
}
