import type { AddressInfo } from 'node:net';

/** The URL a TCP listener can be reached at; IPv6 hosts need brackets in URLs. */
export function listenUrl(scheme: 'ws' | 'http', address: AddressInfo): string {
  const host = address.address.includes(':') ? `[${address.address}]` : address.address;
  return `${scheme}://${host}:${address.port}`;
}
