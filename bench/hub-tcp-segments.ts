/**
 * TCP segments of one of our sockets, from the kernel (`ss -ti`): what the byte counts of a socket
 * leave out is the IP and TCP header on every segment, pure ACKs included.
 */
import { spawnSync } from 'node:child_process';
import type net from 'node:net';

/** IPv4 header (20) + TCP header (20) + the timestamps option Linux sends on every segment (12). */
export const IP_TCP_HEADER_BYTES = 52;

export interface Segments {
  out: number;
  in: number;
}

/**
 * Segments sent and received so far on a connected socket; undefined without `ss`. Both ends are
 * named in the filter: Linux lets one local port serve connections to different peers.
 */
export function segmentsOf(socket: net.Socket): Segments | undefined {
  const { localAddress, localPort, remoteAddress, remotePort } = socket;
  if (localAddress === undefined || localPort === undefined || remoteAddress === undefined || remotePort === undefined) return undefined;
  const filter = `( src ${localAddress}:${localPort} and dst ${remoteAddress}:${remotePort} )`;
  const probe = spawnSync('ss', ['-tinH', 'state', 'established', filter], { encoding: 'utf8', timeout: 5000 });
  if (probe.status !== 0) return undefined;
  const lines = probe.stdout.trim().split('\n').filter((line) => line.includes('segs_out:'));
  if (lines.length !== 1) return undefined;
  const out = /\bsegs_out:(\d+)/.exec(lines[0]!);
  const inbound = /\bsegs_in:(\d+)/.exec(lines[0]!);
  if (!out || !inbound) return undefined;
  return { out: Number(out[1]), in: Number(inbound[1]) };
}
