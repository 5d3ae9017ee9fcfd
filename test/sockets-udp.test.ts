// UDP datagrams on the IPv4 and IPv6 loopbacks. The loopback does not lose datagrams at these small
// volumes, so the tests can expect every one; real networks give no such promise.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { bindUdp, MAX_DATAGRAM_SIZE, type UdpPeer, type UdpSocket } from '../src/sockets/index.js';
import { bounded } from './support/cli.js';

const TEST_TIMEOUT = { timeout: 20_000 };
const WAIT_MS = 10_000;

async function ipv6Loopback(): Promise<string | undefined> {
  const socket = createSocket('udp6');
  try {
    socket.bind(0, '::1');
    await bounded(once(socket, 'listening'), 5000, () => 'bind ::1');
    return undefined;
  } catch (err) {
    return `no IPv6 loopback on this machine (${(err as Error).message})`;
  } finally {
    socket.close();
  }
}
const NO_IPV6 = await ipv6Loopback();

function nextDatagram(socket: UdpSocket): Promise<[Buffer, UdpPeer]> {
  return bounded(once(socket, 'message') as Promise<[Buffer, UdpPeer]>, WAIT_MS, () => 'no datagram');
}

async function roundTrip(host: string, family: 'IPv4' | 'IPv6'): Promise<void> {
  const server = await bindUdp({ host });
  const client = await bindUdp({ host });
  try {
    server.on('message', (data, peer) => void server.send(Buffer.from(data.toString().toUpperCase()), peer));
    const serverSaw = nextDatagram(server);
    const reply = nextDatagram(client);
    await client.send('hello', { address: host, port: server.address().port });
    const [data, peer] = await serverSaw;
    assert.equal(data.toString(), 'hello');
    assert.deepEqual(peer, { address: host, port: client.address().port, family });
    const [answer, from] = await reply;
    assert.equal(answer.toString(), 'HELLO');
    assert.equal(from.port, server.address().port);
  } finally {
    await Promise.all([server.close(), client.close()]);
  }
}

describe('UDP', () => {
  test('round trip on the IPv4 loopback, with the peer address', TEST_TIMEOUT, () => roundTrip('127.0.0.1', 'IPv4'));

  test('round trip on the IPv6 loopback, with the peer address', { ...TEST_TIMEOUT, skip: NO_IPV6 }, async () => {
    const socket = await bindUdp({ host: '::1' });
    assert.equal(socket.type, 'udp6');
    assert.equal(socket.maxDatagramSize, MAX_DATAGRAM_SIZE.udp6);
    await socket.close();
    await roundTrip('::1', 'IPv6');
  });

  test('a datagram of the largest size goes through; one byte more is refused before sending', TEST_TIMEOUT, async () => {
    const server = await bindUdp();
    const client = await bindUdp();
    try {
      const to = { address: '127.0.0.1', port: server.address().port };
      const received = nextDatagram(server);
      await client.send(Buffer.alloc(MAX_DATAGRAM_SIZE.udp4, 1), to);
      assert.equal((await received)[0].length, 65_507);
      assert.throws(() => client.send(Buffer.alloc(65_508), to), {
        name: 'RangeError',
        message: 'datagram of 65508 bytes exceeds the limit of 65507 bytes (udp4)',
      });
    } finally {
      await Promise.all([server.close(), client.close()]);
    }
  });

  test('a receiver drops datagrams over its limit and says so', TEST_TIMEOUT, async () => {
    const server = await bindUdp({ maxDatagramSize: 100 });
    const client = await bindUdp();
    try {
      const to = { address: '127.0.0.1', port: server.address().port };
      const messages: string[] = [];
      server.on('message', (data) => messages.push(data.toString()));
      const oversize = bounded(once(server, 'oversize'), WAIT_MS, () => 'no oversize event');
      await client.send(Buffer.alloc(101, 0x78), to);
      const [size, peer] = (await oversize) as [number, UdpPeer];
      assert.equal(size, 101);
      assert.equal(peer.port, client.address().port);
      const small = nextDatagram(server);
      await client.send('small', to);
      await small;
      assert.deepEqual(messages, ['small']);
      assert.throws(() => server.send(Buffer.alloc(101), to), RangeError);
    } finally {
      await Promise.all([server.close(), client.close()]);
    }
  });

  test('limits beyond the protocol maximum are refused', () => {
    assert.throws(() => bindUdp({ maxDatagramSize: 65_508 }), RangeError);
    assert.throws(() => bindUdp({ type: 'udp6', maxDatagramSize: 65_528 }), RangeError);
  });

  test('async iteration yields datagrams until close', TEST_TIMEOUT, async () => {
    const server = await bindUdp();
    const client = await bindUdp();
    const to = { address: '127.0.0.1', port: server.address().port };
    const got = bounded(
      (async () => {
        const out: string[] = [];
        for await (const { data, peer } of server) {
          out.push(`${data.toString()} from ${peer.port}`);
          if (out.length === 3) void server.close();
        }
        return out;
      })(),
      WAIT_MS,
      () => 'iteration did not end',
    );
    try {
      // Each send waits for the previous one's arrival: the order of datagrams is not guaranteed.
      for (const word of ['one', 'two', 'three']) {
        const arrived = nextDatagram(server);
        await client.send(word, to);
        await arrived;
      }
      const port = client.address().port;
      assert.deepEqual(await got, [`one from ${port}`, `two from ${port}`, `three from ${port}`]);
    } finally {
      await Promise.all([server.close(), client.close()]);
    }
  });

  test('binding an address in use is refused', TEST_TIMEOUT, async () => {
    const first = await bindUdp();
    try {
      await assert.rejects(bindUdp({ port: first.address().port }), { code: 'EADDRINUSE' });
    } finally {
      await first.close();
    }
  });
});
