// Native tests of stops.js: node's test runner, no Wasm (`npm test`).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { state } from '@waystream/guest';
import { Harness, initError, point, pointsBatch, run } from '@waystream/guest/testing';
import Stops, { STOP } from './stops.js';

// No speed (first point), 0.3, 3 and 11 m/s.
const batch = () =>
  pointsBatch([point(0), point(1, { speedMps: 0.3 }), point(2, { speedMps: 3 }), point(3, { speedMps: 11 })]);

test('the configured threshold is kept from init to process', () => {
  assert.deepEqual([...new Harness(Stops).process(batch()).points.flags], [0, STOP, 0, 0]);
  const h = new Harness(Stops, { max_speed_mps: 5 });
  h.process(batch()); // a second batch still sees the threshold
  assert.deepEqual([...h.process(batch()).points.flags], [0, STOP, STOP, 0]);
});

test('other flags are kept', () => {
  const out = new Harness(Stops).process(pointsBatch([point(0, { speedMps: 0.1, flags: 1 })]));
  assert.deepEqual([...out.points.flags], [(1 | STOP) >>> 0]);
});

test('a bad threshold refuses the module', () => {
  assert.equal(initError(Stops, { max_speed_mps: -1 }), 'max_speed_mps must be a positive number, not -1');
  assert.match(initError(Stops, { max_speed_mps: 'fast' }), /not "fast"/);
});

test('the count survives a hot swap', () => {
  const h = new Harness(Stops);
  h.process(batch());
  assert.deepEqual(h.snapshot(), state.save(1, { seen: 4 }));
  assert.equal(h.swap().instance.seen, 4);
  assert.throws(() => h.restore(state.save(2, {})), /version 2/);
  // Another transform's version-1 state (say geofence's, when this module replaces it).
  assert.throws(() => h.restore(state.save(1, { last: { '000/1': [0, 1] } })), /not a stops snapshot/);
  assert.equal(run(Stops, [batch(), batch()]).length, 2);
});
