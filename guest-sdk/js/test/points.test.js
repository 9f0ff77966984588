import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Lines, NO_ZONES, Output, Points, flags, state, TransformError, describe } from '../src/index.js';
import { cut, LIMIT } from '../src/errors.js';
import { point } from '../src/testing.js';

test('rows read absent values as undefined and write back into the typed columns', () => {
  const points = Points.of([point(0), point(1, { altM: 12.5, zones: 0, speedMps: 1.5 })]);
  assert.ok(points.lat instanceof Float64Array && points.tsMs instanceof BigInt64Array && points.flags instanceof Uint32Array);
  const [first, second] = points;
  assert.equal(first.altM, undefined);
  assert.equal(first.zones, undefined);
  assert.deepEqual([second.altM, second.zones, second.speedMps], [12.5, 0, 1.5]);
  assert.ok(Number.isNaN(points.altM[0]));
  assert.equal(points.zones[0], NO_ZONES);

  first.flags |= flags.user(16);
  first.headingDeg = 90;
  first.tsMs = 5; // a Number is taken too
  second.zones = undefined;
  second.speedMps = undefined;
  assert.deepEqual([...points.flags], [0x10000, 0]);
  assert.equal(points.tsMs[0], 5n);
  assert.deepEqual([...points.zones], [NO_ZONES, NO_ZONES]);
  assert.equal(points.at(-1).toPoint().altM, 12.5);
  assert.equal(points.at(5), undefined);
});

test('take, without and check', () => {
  const points = Points.of([0, 1, 2, 3].map((i) => point(i)));
  assert.deepEqual([...points.without([1, 2]).seq], [0, 3]);
  assert.deepEqual([...points.take([3, 0]).seq], [3, 0]);
  points.check(1);
  assert.throws(() => points.check(0), /trajectory 0, not in the batch's table of 0/);
  points.flags = points.flags.subarray(1);
  assert.throws(() => points.check(), /differ in length/);
  const out = Output.rejecting(Points.of([point(0), point(1)]), [{ index: 0, reason: 'why' }]);
  assert.deepEqual([...out.points.seq], [1]);
});

test('lines split the blob at the ends', () => {
  const lines = [...Lines.of(['a,b', new Uint8Array([0xff]), ''])];
  assert.deepEqual(lines.map((l) => [l.index, l.seq, l.text]), [[0, 0, 'a,b'], [1, 1, '\uFFFD'], [2, 2, '']]);
});

test('flags match the contract', () => {
  assert.deepEqual([flags.IMPLAUSIBLE_SPEED, flags.ZONE_ENTER, flags.ZONE_EXIT, flags.ALTITUDE_MISSING], [1, 2, 4, 8]);
  assert.equal(flags.user(31), 2 ** 31);
  assert.throws(() => flags.user(15), RangeError);
  const column = new Uint32Array(1);
  column[0] |= flags.user(31); // JS's signed bit operations still store the right u32
  assert.equal(column[0], 2 ** 31);
});

test('errors: name, message, stack; bounded; TransformError is its message', () => {
  const text = describe(new RangeError('out of range'));
  assert.match(text, /^RangeError: out of range\n {2}at /);
  assert.equal(describe(new TransformError('plain')), 'plain');
  assert.equal(describe('thrown string'), 'thrown string');
  assert.equal(describe({ payload: 1 }), '{"payload":1}');
  const long = cut(`Error: first\n${'é'.repeat(5000)}\nlast frame`);
  assert.ok(new TextEncoder().encode(long).length <= LIMIT);
  assert.match(long, /^Error: first\n… \(\d+ bytes, cut\) …\n/);
  assert.ok(long.endsWith('last frame'));
  assert.match(describe(new Error('outer', { cause: new TypeError('inner') })), /caused by: TypeError: inner$/);
});

test('state uses the Rust SDK layout', () => {
  const bytes = state.save(1, { seen: 4 });
  assert.equal(new TextDecoder().decode(bytes), '{"version":1,"state":{"seen":4}}');
  assert.deepEqual(state.load('x', 1, bytes), { seen: 4 });
  assert.equal(state.load('x', 1, new Uint8Array()), undefined);
  assert.throws(() => state.load('x', 2, bytes), /x snapshot version 1 is not the version 2/);
  assert.throws(() => state.load('x', 1, new Uint8Array([1])), /not a x snapshot/);
});
