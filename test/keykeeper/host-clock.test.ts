import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HostClock } from '../../lib/keykeeper/host-clock.js';

const LOCAL = Date.parse('Wed, 23 Apr 2025 12:00:00 GMT');

test('host time comes from x-ms-azure-host-date, else from Date when that is missing or unreadable', () => {
  const at = (headers: Record<string, string>) => {
    const c = new HostClock(() => LOCAL, 60_000);
    c.observe(headers);
    return c.offset();
  };
  const hostDate = 'Wed, 23 Apr 2025 12:00:10 GMT';
  const date = 'Wed, 23 Apr 2025 12:00:20 GMT';
  assert.equal(at({ 'x-ms-azure-host-date': hostDate, date }), 10_000);
  assert.equal(at({ date }), 20_000);
  assert.equal(at({ 'x-ms-azure-host-date': 'not a date', date }), 20_000);
  assert.equal(at({ 'x-ms-azure-host-date': 'not a date' }), 0);
});

test('the host clock is re-synced only once the interval has passed', () => {
  let now = LOCAL;
  const c = new HostClock(() => now, 60_000);
  c.observe({ 'x-ms-azure-host-date': 'Wed, 23 Apr 2025 12:00:10 GMT' });
  now += 30_000;
  c.observe({ 'x-ms-azure-host-date': 'Wed, 23 Apr 2025 12:05:00 GMT' });
  assert.equal(c.offset(), 10_000);
  now += 31_000;
  c.observe({ 'x-ms-azure-host-date': 'Wed, 23 Apr 2025 12:01:06 GMT' });
  assert.equal(c.offset(), 5_000);
});
