import test from 'node:test';
import assert from 'node:assert/strict';
import { AppState } from '../assets/js/AppState.js';
import { LiveSeries } from '../assets/js/components/Dashboard/BandwidthChart.js';
import { breakdownRows } from '../assets/js/components/Dashboard/ProtocolBreakdown.js';
import { parseHash } from '../assets/js/components/Common/TabNavigation.js';
import { applyAlert } from '../assets/js/components/Health/AlertPanel.js';
import { flatten } from '../assets/js/components/Health/MetricsGrid.js';
import { backoffDelay, toQuery, userMessage, ApiError, api } from '../assets/js/services/apiClient.js';

test('AppState updates immutably and notifies related paths', () => {
  const s = new AppState();
  const before = s.getState();
  const beforeDash = s.getState('dashboard');
  const seen = [];
  s.subscribe('dashboard', (v) => seen.push(['dashboard', v.metrics]));
  s.subscribe('dashboard.metrics', (v, old) => seen.push(['metrics', v, old]));
  s.subscribe('ui', () => seen.push(['ui']));
  s.setState('dashboard.metrics', { bps: 1 }, 'test');
  assert.notEqual(s.getState(), before, 'root replaced');
  assert.notEqual(s.getState('dashboard'), beforeDash, 'path copied');
  assert.equal(s.getState('ui'), before.ui, 'unrelated branch shared');
  assert.equal(beforeDash.metrics, null, 'old object untouched');
  assert.deepEqual(seen, [['dashboard', { bps: 1 }], ['metrics', { bps: 1 }, null]]);
  assert.equal(s.history.at(-1).action, 'test');
});

test('LiveSeries keeps 300 s in order, replaces same-second points, inserts backfill', () => {
  const l = new LiveSeries(300);
  for (let t = 1000; t < 1400; t += 1) l.put(t, t, 1);
  assert.equal(l.t.length, 300);
  assert.equal(l.t[0], 1100);
  l.put(1399, 5, 5);
  assert.equal(l.t.length, 300);
  assert.equal(l.bps.at(-1), 5);
  const m = new LiveSeries(300);
  m.put(10, 1, 1);
  m.put(12, 3, 3);
  m.put(11, 2, 2);
  assert.deepEqual(m.t, [10, 11, 12]);
  assert.deepEqual(m.bps, [1, 2, 3]);
});

test('protocol shares add up and sort by bytes', () => {
  const rows = breakdownRows([{ protocolName: 'udp', bytes: 100, packets: 1 }, { protocolName: 'tcp', bytes: 300, packets: 3 }]);
  assert.deepEqual(rows.map((r) => r.name), ['TCP', 'UDP']);
  assert.equal(rows[0].share, 75);
  assert.deepEqual(breakdownRows([]), []);
});

test('hash routes', () => {
  assert.deepEqual(parseHash(''), { view: 'dashboard', params: {} });
  assert.deepEqual(parseHash('#/flows?host=10.0.0.1&port=53'), { view: 'flows', params: { host: '10.0.0.1', port: '53' } });
  assert.deepEqual(parseHash('#/health'), { view: 'health', params: {} });
  assert.deepEqual(parseHash('#/nonsense'), { view: 'dashboard', params: {} });
  assert.equal(parseHash('#/flows/abc').view, 'flows');
});

test('alerts replace by id and clear', () => {
  let l = applyAlert([], { id: 'drops', active: true, message: 'a' });
  l = applyAlert(l, { id: 'bw', active: true });
  l = applyAlert(l, { id: 'drops', active: true, message: 'b' });
  assert.deepEqual(l.map((a) => a.id), ['drops', 'bw']);
  assert.equal(l[0].message, 'b');
  assert.deepEqual(applyAlert(l, { id: 'drops', active: false }).map((a) => a.id), ['bw']);
});

test('health details flatten', () => {
  assert.deepEqual(flatten({ a: 1, b: { c: 2, d: [] } }), [['a', 1], ['b / c', 2], ['b / d', 'none']]);
});

test('api helpers: backoff is capped, queries skip empties, messages follow the seed', () => {
  assert.equal(backoffDelay(0, { random: () => 1 }), 1000);
  assert.equal(backoffDelay(3, { random: () => 1 }), 8000);
  assert.equal(backoffDelay(30, { random: () => 1 }), 15000);
  assert.equal(backoffDelay(30, { random: () => 0 }), 7500);
  assert.equal(toQuery({ a: '', b: null, protocol: 'all', c: 0, d: 'x y' }), '?c=0&d=x+y');
  assert.equal(toQuery(null), '');
  assert.equal(api.csvUrl({ host: '10.0.0.1', limit: 100, offset: 200, sort_by: 'bytes' }), '/api/v1/flows?host=10.0.0.1&sort_by=bytes&format=csv');
  assert.equal(userMessage(new ApiError({ kind: 'server', code: 'CAPTURE_FAILED', message: 'x' })), 'Network capture temporarily unavailable');
  assert.equal(userMessage(new ApiError({ kind: 'server', code: 'WHATEVER', message: 'x' })), 'System temporarily unavailable');
  assert.equal(userMessage(new ApiError({ kind: 'network', message: 'x' })), 'Cannot reach the Netwatch server - retrying');
  assert.match(userMessage(new ApiError({ kind: 'client', status: 400, message: 'port: 70000 is out of range' })), /Invalid request: port/);
  assert.equal(new ApiError({ kind: 'client', message: '' }).retryable, false);
});
