import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkApplicationClose, encodeClosePayload, isValidWireCode, parseClosePayload } from '../src/protocol/close.js';

test('wire-valid close codes', () => {
  const valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];
  const invalid = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];
  for (const code of valid) assert.ok(isValidWireCode(code), String(code));
  for (const code of invalid) assert.ok(!isValidWireCode(code), String(code));
});

test('close payloads round-trip', () => {
  assert.equal(encodeClosePayload().length, 0);
  assert.deepEqual(parseClosePayload(encodeClosePayload(4001, 'héllo')), { ok: true, code: 4001, reason: 'héllo' });
  assert.deepEqual(parseClosePayload(Buffer.alloc(0)), { ok: true, code: 1005, reason: '' });
});

test('the browser\'s checks on close(code, reason)', () => {
  assert.doesNotThrow(() => checkApplicationClose());
  assert.doesNotThrow(() => checkApplicationClose(1000, 'x'.repeat(123)));
  assert.doesNotThrow(() => checkApplicationClose(3000));
  assert.doesNotThrow(() => checkApplicationClose(4999));
  for (const code of [999, 1001, 1005, 1011, 2999, 5000]) {
    assert.throws(() => checkApplicationClose(code), (e: DOMException) => e.name === 'InvalidAccessError', String(code));
  }
  assert.throws(() => checkApplicationClose(1000, 'é'.repeat(62)), (e: DOMException) => e.name === 'SyntaxError');
  assert.doesNotThrow(() => checkApplicationClose(1011, 'server side', true));
  assert.throws(() => checkApplicationClose(1005, '', true), (e: DOMException) => e.name === 'InvalidAccessError');
});
