// Native tests of {{name}} (node --test, no Wasm).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Harness, point, pointsBatch } from '@waystream/guest/testing';
import Passthrough from './transform.js';

test('points pass through unchanged', () => {
  const batch = pointsBatch([point(0), point(1, { speedMps: 1.5 })]);
  const out = new Harness(Passthrough, { example: 1 }).process(batch);
  assert.deepEqual(out.points.columns(), batch.points.columns());
  assert.deepEqual(out.rejected, []);
});
