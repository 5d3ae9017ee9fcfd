// Opening a framed TCP connection, with the time limit plain `net.connect` lacks: without one, a peer
// that drops our SYNs keeps the caller waiting for minutes, as long as the kernel retries.
import { connect as netConnect } from 'node:net';
import { formatEndpoint } from './endpoint.js';
import { FramedSocket, type FramedSocketOptions } from './framed-socket.js';
import type { Codec } from './framing.js';

export interface ConnectOptions<Out, In> extends FramedSocketOptions {
  host: string;
  port: number;
  codec: Codec<Out, In>;
  /** Give up when the connection is not established within this many ms; default 10000. */
  connectTimeout?: number;
}

export const DEFAULT_CONNECT_TIMEOUT = 10_000;

/** Resolves with the connected socket; rejects with the socket's error (code ECONNREFUSED, ETIMEDOUT…). */
export function connectTcp<Out, In>(options: ConnectOptions<Out, In>): Promise<FramedSocket<Out, In>> {
  const { host, port, codec, connectTimeout = DEFAULT_CONNECT_TIMEOUT, ...socketOptions } = options;
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host, port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      const where = formatEndpoint(host, port);
      socket.destroy(Object.assign(new Error(`connecting to ${where} timed out after ${connectTimeout} ms`), { code: 'ETIMEDOUT' }));
    }, connectTimeout);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(err);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(new FramedSocket(socket, codec, socketOptions));
    });
  });
}
