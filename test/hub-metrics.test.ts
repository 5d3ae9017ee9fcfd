import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Gauge, hubMetrics, RateSeries, Registry } from '../src/hub/metrics.js';

describe('Registry text format', () => {
  test('counters and gauges, with and without labels, in registration order', () => {
    const registry = new Registry();
    const requests = registry.counter('app_requests_total', 'Requests handled.', ['method', 'code']);
    const temperature = registry.gauge('app_temperature_celsius', 'Current temperature.');
    const plain = registry.counter('app_starts_total', 'Starts.');
    requests.inc({ method: 'get', code: '200' });
    requests.inc({ method: 'get', code: '200' }, 2);
    requests.inc({ code: '404', method: 'post' });
    temperature.set(21.5);
    plain.inc(3);
    assert.equal(
      registry.text(),
      '# HELP app_requests_total Requests handled.\n' +
        '# TYPE app_requests_total counter\n' +
        'app_requests_total{method="get",code="200"} 3\n' +
        'app_requests_total{method="post",code="404"} 1\n' +
        '# HELP app_temperature_celsius Current temperature.\n' +
        '# TYPE app_temperature_celsius gauge\n' +
        'app_temperature_celsius 21.5\n' +
        '# HELP app_starts_total Starts.\n' +
        '# TYPE app_starts_total counter\n' +
        'app_starts_total 3\n',
    );
  });

  test('an unlabelled metric reads 0 at once; a labelled one has no sample until used', () => {
    const registry = new Registry();
    registry.counter('a_total', 'A.');
    registry.gauge('b', 'B.', ['x']);
    assert.equal(registry.text(), '# HELP a_total A.\n# TYPE a_total counter\na_total 0\n# HELP b B.\n# TYPE b gauge\n');
  });

  test('label values escape backslash, double quote and line feed; help escapes backslash and line feed', () => {
    const registry = new Registry();
    const counter = registry.counter('esc_total', 'Line one\nback\\slash "quoted"', ['path']);
    counter.inc({ path: 'C:\\dir\n"x"' });
    counter.inc({ path: 'tab\there, unicode é ✓' });
    assert.equal(
      registry.text(),
      '# HELP esc_total Line one\\nback\\\\slash "quoted"\n' +
        '# TYPE esc_total counter\n' +
        'esc_total{path="C:\\\\dir\\n\\"x\\""} 1\n' +
        'esc_total{path="tab\there, unicode é ✓"} 1\n',
    );
  });

  test('special and fractional values', () => {
    const registry = new Registry();
    const gauge = registry.gauge('v', 'Values.', ['k']);
    gauge.set({ k: 'nan' }, Number.NaN);
    gauge.set({ k: 'inf' }, Infinity);
    gauge.set({ k: 'ninf' }, -Infinity);
    gauge.set({ k: 'frac' }, 0.1 + 0.2);
    gauge.set({ k: 'big' }, 2 ** 53);
    gauge.set({ k: 'neg' }, -3);
    gauge.set({ k: 'tiny' }, 1e-7);
    assert.equal(
      registry.text(),
      '# HELP v Values.\n# TYPE v gauge\n' +
        'v{k="nan"} NaN\n' +
        'v{k="inf"} +Inf\n' +
        'v{k="ninf"} -Inf\n' +
        'v{k="frac"} 0.30000000000000004\n' +
        'v{k="big"} 9007199254740992\n' +
        'v{k="neg"} -3\n' +
        'v{k="tiny"} 1e-7\n',
    );
  });

  test('names are validated', () => {
    const registry = new Registry();
    for (const bad of ['', '1abc', 'a-b', 'a b', 'é']) {
      assert.throws(() => registry.counter(bad, 'x'), /invalid metric name/, bad);
    }
    assert.doesNotThrow(() => registry.gauge('ns:sub_metric_1', 'colons are allowed'));
    for (const bad of ['__reserved', '1x', 'a:b', 'a-b']) {
      assert.throws(() => registry.gauge('g', 'x', [bad]), /invalid label name/, bad);
    }
    assert.throws(() => registry.gauge('g', 'x', ['a', 'a']), /duplicate label names/);
    registry.counter('once_total', 'x');
    assert.throws(() => registry.gauge('once_total', 'x'), /already registered/);
  });

  test('label sets must match the label names exactly', () => {
    const counter = new Counter('c_total', 'x', ['a', 'b']);
    assert.throws(() => counter.inc({ a: '1' }), /label b is missing/);
    assert.throws(() => counter.inc({ a: '1', b: '2', c: '3' }), /unknown label c/);
    assert.throws(() => counter.inc(), /label a is missing/);
    const constructor = new Counter('proto_total', 'x', ['constructor']);
    assert.throws(() => constructor.inc({}), /label constructor is missing/);
    assert.throws(() => counter.inc({ a: '1', b: 2 as unknown as string }), /label b is missing/);
  });

  test('counters only go up', () => {
    const counter = new Counter('c_total', 'x');
    assert.throws(() => counter.inc(-1), RangeError);
    assert.throws(() => counter.inc(Number.NaN), RangeError);
    assert.throws(() => counter.with({}).inc(Infinity), RangeError);
    counter.inc(0);
    counter.inc(2.5);
    assert.equal(counter.get(), 2.5);
  });

  test('gauges set, inc and dec; bound handles share the series', () => {
    const gauge = new Gauge('g', 'x', ['t']);
    gauge.set({ t: 'a' }, 10);
    gauge.inc({ t: 'a' });
    gauge.dec({ t: 'a' }, 4);
    const bound = gauge.with({ t: 'a' });
    bound.inc(2);
    bound.dec();
    assert.equal(gauge.get({ t: 'a' }), 8);
    bound.set(-1);
    assert.equal(gauge.get({ t: 'a' }), -1);
    assert.equal(bound.get(), -1);
    assert.equal(gauge.get({ t: 'never' }), 0);

    const plain = new Gauge('p', 'x');
    plain.inc();
    plain.inc(4);
    plain.dec(2);
    assert.equal(plain.get(), 3);
    const counter = new Counter('c_total', 'x', ['t']);
    const handle = counter.with({ t: 'ws' });
    handle.inc();
    handle.inc(4);
    counter.inc({ t: 'ws' });
    assert.equal(counter.get({ t: 'ws' }), 6);
    assert.equal(handle.get(), 6);
  });

  test('a collected gauge is read at scrape time, and cannot be changed by hand', () => {
    let queue = [3, 1];
    const registry = new Registry();
    const gauge = registry.gauge('queue_length', 'Queued items.', ['queue'], () =>
      queue.map((length, i) => [{ queue: `q${i}` }, length] as const),
    );
    assert.equal(
      registry.text(),
      '# HELP queue_length Queued items.\n# TYPE queue_length gauge\nqueue_length{queue="q0"} 3\nqueue_length{queue="q1"} 1\n',
    );
    queue = [7];
    assert.equal(registry.text(), '# HELP queue_length Queued items.\n# TYPE queue_length gauge\nqueue_length{queue="q0"} 7\n');
    assert.equal(gauge.get({ queue: 'q0' }), 7);
    assert.equal(gauge.get({ queue: 'q1' }), 0);
    assert.throws(() => gauge.set({ queue: 'q0' }, 1), /collected at scrape time/);
    assert.throws(() => gauge.inc({ queue: 'q0' }), /collected at scrape time/);
    assert.throws(() => gauge.with({ queue: 'q0' }), /collected at scrape time/);
  });

  test('a collector reporting one label set twice yields one series; bad labels from it throw', () => {
    const registry = new Registry();
    registry.gauge('dup', 'x', ['k'], () => [
      [{ k: 'a' }, 1],
      [{ k: 'a' }, 2],
    ]);
    assert.equal(registry.text(), '# HELP dup x\n# TYPE dup gauge\ndup{k="a"} 2\n');
    registry.gauge('broken', 'x', ['k'], () => [[{ j: 'a' }, 1]]);
    assert.throws(() => registry.text(), /broken: label k is missing/);
  });

  test('a metric made on its own can be registered', () => {
    const registry = new Registry();
    const gauge = registry.register(new Gauge('own', 'Own.', [], () => [[{}, 42]]));
    assert.equal(gauge.get(), 42);
    assert.equal(registry.text(), '# HELP own Own.\n# TYPE own gauge\nown 42\n');
  });
});

describe('Registry json', () => {
  test('the same numbers, with types, help and label objects', () => {
    const registry = new Registry();
    registry.counter('c_total', 'Count.', ['t']).inc({ t: 'ws' }, 2);
    registry.gauge('g', 'Gauge.').set(5);
    registry.gauge('h', 'Collected.', ['k'], () => [[{ k: 'x"y' }, Number.NaN]]);
    const json = registry.json();
    assert.deepEqual(json, {
      c_total: { type: 'counter', help: 'Count.', values: [{ labels: { t: 'ws' }, value: 2 }] },
      g: { type: 'gauge', help: 'Gauge.', values: [{ labels: {}, value: 5 }] },
      h: { type: 'gauge', help: 'Collected.', values: [{ labels: { k: 'x"y' }, value: Number.NaN }] },
    });
    assert.equal(
      JSON.stringify(json.h),
      '{"type":"gauge","help":"Collected.","values":[{"labels":{"k":"x\\"y"},"value":null}]}',
    );
  });
});

describe('hubMetrics', () => {
  const fakeProcess = () => ({ residentBytes: 50_000_000, heapUsedBytes: 12_345_678, cpuSeconds: 1.25 });

  test('the full exposition, golden', () => {
    const metrics = hubMetrics(new Registry(), { process: fakeProcess, startTime: 1_700_000_000 });
    metrics.collect(() => ({ engine: { channels: 4, historyMessages: 120 }, subscriptions: 9 }));
    metrics.connections.inc({ transport: 'ws' });
    metrics.connections.inc({ transport: 'ws' });
    metrics.connections.dec({ transport: 'ws' });
    metrics.connectionsTotal.inc({ transport: 'ws' }, 2);
    metrics.connections.inc({ transport: 'sse' });
    metrics.connectionsTotal.inc({ transport: 'sse' });
    metrics.messagesIn.inc({ transport: 'ws' }, 5);
    metrics.bytesIn.inc({ transport: 'ws' }, 500);
    metrics.messagesOut.inc({ transport: 'sse' }, 7);
    metrics.bytesOut.inc({ transport: 'sse' }, 1400);
    metrics.drops.inc({ reason: 'rate_limit' });
    metrics.dropped('history_gap');
    metrics.published('http');
    metrics.error('bad_request');
    assert.equal(
      metrics.registry.text(),
      `# HELP duplex_connections Open client connections.
# TYPE duplex_connections gauge
duplex_connections{transport="ws"} 1
duplex_connections{transport="sse"} 1
duplex_connections{transport="poll"} 0
# HELP duplex_connections_total Client connections accepted.
# TYPE duplex_connections_total counter
duplex_connections_total{transport="ws"} 2
duplex_connections_total{transport="sse"} 1
duplex_connections_total{transport="poll"} 0
# HELP duplex_messages_in_total Messages received from clients.
# TYPE duplex_messages_in_total counter
duplex_messages_in_total{transport="ws"} 5
duplex_messages_in_total{transport="sse"} 0
duplex_messages_in_total{transport="poll"} 0
# HELP duplex_messages_out_total Messages delivered to clients.
# TYPE duplex_messages_out_total counter
duplex_messages_out_total{transport="ws"} 0
duplex_messages_out_total{transport="sse"} 7
duplex_messages_out_total{transport="poll"} 0
# HELP duplex_bytes_in_total Payload bytes received from clients.
# TYPE duplex_bytes_in_total counter
duplex_bytes_in_total{transport="ws"} 500
duplex_bytes_in_total{transport="sse"} 0
duplex_bytes_in_total{transport="poll"} 0
# HELP duplex_bytes_out_total Payload bytes delivered to clients.
# TYPE duplex_bytes_out_total counter
duplex_bytes_out_total{transport="ws"} 0
duplex_bytes_out_total{transport="sse"} 1400
duplex_bytes_out_total{transport="poll"} 0
# HELP duplex_drops_total Messages dropped instead of delivered or accepted.
# TYPE duplex_drops_total counter
duplex_drops_total{reason="slow_consumer"} 0
duplex_drops_total{reason="rate_limit"} 1
duplex_drops_total{reason="too_large"} 0
duplex_drops_total{reason="history_gap"} 1
# HELP duplex_publishes_total Publishes accepted.
# TYPE duplex_publishes_total counter
duplex_publishes_total{source="ws"} 0
duplex_publishes_total{source="http"} 1
# HELP duplex_errors_total Errors answered to clients, by error code.
# TYPE duplex_errors_total counter
duplex_errors_total{code="bad_request"} 1
# HELP duplex_channels Channels the engine holds.
# TYPE duplex_channels gauge
duplex_channels 4
# HELP duplex_history_messages Messages held in history, all channels.
# TYPE duplex_history_messages gauge
duplex_history_messages 120
# HELP duplex_subscriptions Channel subscriptions of this node.
# TYPE duplex_subscriptions gauge
duplex_subscriptions 9
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 50000000
# HELP nodejs_heap_size_used_bytes V8 heap in use, in bytes.
# TYPE nodejs_heap_size_used_bytes gauge
nodejs_heap_size_used_bytes 12345678
# HELP process_cpu_seconds_total User and system CPU time spent, in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 1.25
# HELP process_start_time_seconds Start time of the process since the epoch, in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1700000000
`,
    );
  });

  test('collected gauges follow the hub state and have no sample without it', () => {
    const metrics = hubMetrics(new Registry(), { process: fakeProcess });
    const scrape = () => metrics.registry.text();
    assert.match(scrape(), /# TYPE duplex_channels gauge\n# HELP duplex_history_messages/);
    assert.doesNotMatch(scrape(), /^duplex_subscriptions /m);
    let state = { engine: { channels: 1, historyMessages: 2 }, subscriptions: 3 };
    metrics.collect(() => state);
    assert.match(scrape(), /^duplex_channels 1$/m);
    state = { engine: { channels: 10, historyMessages: 20 }, subscriptions: 30 };
    assert.match(scrape(), /^duplex_channels 10$/m);
    assert.match(scrape(), /^duplex_history_messages 20$/m);
    assert.match(scrape(), /^duplex_subscriptions 30$/m);
    assert.equal(metrics.subscriptions.get(), 30);
  });

  test('the real process figures are plausible', () => {
    const metrics = hubMetrics();
    const text = metrics.registry.text();
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    assert.ok(value('process_resident_memory_bytes') > 1_000_000);
    assert.ok(value('nodejs_heap_size_used_bytes') > 100_000);
    assert.ok(value('process_cpu_seconds_total') > 0);
    const start = value('process_start_time_seconds');
    assert.ok(start <= Date.now() / 1000 && start > Date.now() / 1000 - 3600);
  });

  test('a registry takes the hub set once', () => {
    const registry = new Registry();
    hubMetrics(registry, { process: fakeProcess });
    assert.throws(() => hubMetrics(registry, { process: fakeProcess }), /already registered/);
  });

  test('tick feeds the per-second rates from the counters, and snapshot serves them', () => {
    const metrics = hubMetrics(new Registry(), { process: fakeProcess, startTime: 1_000, rateWindow: 10 });
    const t0 = 2_000_000; // ms, on a second boundary
    metrics.messagesIn.inc({ transport: 'ws' }, 100); // before the first tick: baseline only
    metrics.tick(t0);
    metrics.messagesIn.inc({ transport: 'ws' }, 3);
    metrics.messagesIn.inc({ transport: 'sse' }, 2);
    metrics.messagesOut.inc({ transport: 'poll' }, 10);
    metrics.tick(t0 + 1_000);
    metrics.messagesIn.inc({ transport: 'ws' }, 4);
    metrics.tick(t0 + 2_000);
    // Two ticks missed (a busy event loop): the 6 messages are spread over the 3 s since the last.
    metrics.messagesOut.inc({ transport: 'ws' }, 6);
    metrics.tick(t0 + 5_000);
    const snapshot = metrics.snapshot(t0 + 5_500, 6);
    assert.equal(snapshot.time, t0 + 5_500);
    assert.equal(snapshot.uptimeSeconds, (t0 + 5_500) / 1000 - 1_000);
    assert.deepEqual(snapshot.rates.messagesIn, [0, 5, 4, 0, 0, 0]);
    assert.deepEqual(snapshot.rates.messagesOut, [0, 10, 0, 2, 2, 2]);
    assert.deepEqual(snapshot.metrics.duplex_messages_in_total?.values, [
      { labels: { transport: 'ws' }, value: 107 },
      { labels: { transport: 'sse' }, value: 2 },
      { labels: { transport: 'poll' }, value: 0 },
    ]);
    assert.equal(JSON.parse(JSON.stringify(snapshot)).metrics.duplex_channels.values.length, 0);
  });
});

describe('RateSeries', () => {
  const base = 1_700_000_000_000; // ms, on a second boundary

  test('per-second counts of complete seconds, oldest first, with gaps as 0', () => {
    const rates = new RateSeries(60);
    rates.record(base + 10, 2);
    rates.record(base + 999, 3);
    rates.record(base + 1_000);
    rates.record(base + 4_200, 7); // seconds 2 and 3 had nothing
    rates.record(base + 5_100, 9); // the current second: not reported yet
    assert.deepEqual(rates.series(base + 5_500, 6), [0, 5, 1, 0, 0, 7]);
    assert.deepEqual(rates.series(base + 6_000, 6), [5, 1, 0, 0, 7, 9]);
    assert.deepEqual(rates.series(base + 5_500, 0), []);
  });

  test('slots are reused as the window moves; old seconds read 0, never stale counts', () => {
    const rates = new RateSeries(3);
    rates.record(base, 1);
    rates.record(base + 1_000, 2);
    rates.record(base + 2_000, 3);
    assert.deepEqual(rates.series(base + 3_000, 3), [1, 2, 3]);
    rates.record(base + 4_000, 5); // reuses the slot of second 0
    assert.deepEqual(rates.series(base + 5_000, 3), [3, 0, 5]);
    // A long silence: everything falls out of the window.
    assert.deepEqual(rates.series(base + 60_000, 3), [0, 0, 0]);
    rates.record(base + 60_000, 4);
    assert.deepEqual(rates.series(base + 61_000, 3), [0, 0, 4]);
  });

  test('a late record for a second whose slot was reused is ignored', () => {
    const rates = new RateSeries(3);
    rates.record(base + 8_000, 1); // slot 8 % 4 = 0
    rates.record(base + 4_000, 50); // same slot, older second: dropped
    assert.deepEqual(rates.series(base + 9_000, 3), [0, 0, 1]);
    rates.record(base + 7_000, 2); // an older second with its own slot still counts
    assert.deepEqual(rates.series(base + 9_000, 3), [0, 2, 1]);
  });

  test('recordSpan shares a count between the seconds it covers', () => {
    const rates = new RateSeries(10);
    rates.recordSpan(base + 500, base + 2_500, 8); // 0.5 s, 1 s, 0.5 s
    assert.deepEqual(rates.series(base + 3_000, 3), [2, 4, 2]);
    rates.recordSpan(base + 3_000, base + 3_000, 5); // no span: all in the second of `to`
    assert.deepEqual(rates.series(base + 4_000, 1), [5]);
    // A gap longer than the window only touches the seconds the window can still show.
    rates.recordSpan(base + 4_000, base + 1_004_000, 1_000_000);
    assert.deepEqual(rates.series(base + 1_004_000, 10), new Array(10).fill(1_000));
  });

  test('bad arguments', () => {
    assert.throws(() => new RateSeries(0), RangeError);
    assert.throws(() => new RateSeries(1.5), RangeError);
    const rates = new RateSeries(5);
    assert.throws(() => rates.record(Number.NaN), RangeError);
    assert.throws(() => rates.record(base, -1), RangeError);
    assert.throws(() => rates.series(base, 6), RangeError);
    assert.throws(() => rates.series(base, -1), RangeError);
    assert.deepEqual(rates.series(base), [0, 0, 0, 0, 0]);
  });
});
