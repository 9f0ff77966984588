// Run a transform natively (node --test), no Wasm: batch builders and a harness.
//
//   import { test } from 'node:test';
//   import assert from 'node:assert/strict';
//   import { Harness, point, pointsBatch } from '@waystream/guest/testing';
//
//   test('slow points are stops', () => {
//     const h = new Harness(Stops, { max_speed_mps: 2 });
//     const out = h.process(pointsBatch([point(0, { speedMps: 1 }), point(1, { speedMps: 3 })]));
//     assert.deepEqual([...out.points.flags], [STOP, 0]);
//   });
//
// The harness goes through the same routing as the component (one instance, `init` with
// the config as JSON, errors turned into the contract's text) and checks every output as
// the host does (accounting, point values, reserved flags), plus the column types the Wasm
// boundary needs, so a test fails where the host would dead-letter.

import { swapSink } from './log.js';
import { Batch, FIELDS, Lines, NO_ZONES, Points } from './points.js';
import { GuestError, Runtime, checkAccounting } from './runtime.js';

/** 2008-10-23T02:53:00Z, the default time of `point` (seq n is n seconds later). */
export const DEFAULT_TS_MS = 1_224_730_380_000n;
const MAX_TS_MS = 4_133_980_799_999n; // 2100-12-31T23:59:59.999Z, the host's default max_year
const RESERVED = 0x0000fff0;

/** A trajectory table entry. */
export const trajectory = (user = 'test', id = 't') => ({ user, id });

/** A point of `trajectory` (an index into the batch's table), one second per `seq` after
 * DEFAULT_TS_MS unless `tsMs` is given; other fields (`speedMps`, `flags`, …) from `fields`. */
export function point(seq = 0, { trajectory = 0, tsMs, lat = 39.9, lon = 116.4, ...fields } = {}) {
  return { trajectory, seq, tsMs: tsMs === undefined ? DEFAULT_TS_MS + 1000n * BigInt(seq) : BigInt(tsMs), lat, lon, flags: 0, ...fields };
}

/** A batch of points. Without `trajectories` the table gets one entry per index used:
 * test/t, then test/t1, test/t2, … */
export function pointsBatch(points, { trajectories, zoneSets = [] } = {}) {
  const columns = Points.of(points);
  if (!trajectories) {
    const count = Math.max(0, ...columns.trajectory) + 1;
    trajectories = Array.from({ length: count }, (_, i) => trajectory('test', i === 0 ? 't' : `t${i}`));
  }
  return new Batch(trajectories, zoneSets, columns);
}

/** A batch of raw lines (strings or bytes) of trajectory 0, numbered from seq 0. */
export function linesBatch(lines, { trajectories = [trajectory()] } = {}) {
  return new Batch(trajectories, [], Lines.of(lines));
}

/** One transform instance, called as the host would. `process`/`restore` throw what the
 * transform threw; `processError` returns the error text the host would get instead.
 * `logs` collects `[level, message]` of every line logged during the calls. */
export class Harness {
  constructor(cls, config = {}) {
    this.cls = cls;
    this.config = config;
    this.logs = [];
    this.runtime = new Runtime(cls);
    this.#call(() => this.runtime.init(typeof config === 'string' ? config : JSON.stringify(config)));
  }

  /** The transform object itself. */
  get instance() {
    return this.runtime.instance;
  }

  /** `process` on `batch`, checked as the host checks it. */
  process(batch) {
    const output = this.#call(() => this.runtime.process(batch));
    checkOutput(batch, output);
    return output;
  }

  /** The error text of a `process` that must fail (throws if it does not). */
  processError(batch) {
    try {
      this.#call(() => this.runtime.process(batch), false);
    } catch (e) {
      if (e instanceof GuestError) return e.message;
      throw e;
    }
    throw new Error('process succeeded; expected an error');
  }

  snapshot() {
    return this.#call(() => this.runtime.snapshot());
  }

  restore(state) {
    this.#call(() => this.runtime.restore(state));
  }

  /** A hot swap: a new instance (of `cls`, default the same class and config), initialised
   * and restored from this one's snapshot. */
  swap(cls = this.cls, config = this.config) {
    const next = new Harness(cls, config);
    next.restore(this.snapshot());
    return next;
  }

  #call(fn, unwrap = true) {
    const previous = swapSink((level, text) => this.logs.push([level, text]));
    try {
      return fn();
    } catch (e) {
      // Natively what was thrown is more use than its text.
      if (unwrap && e instanceof GuestError && e.cause !== undefined) throw e.cause;
      throw e;
    } finally {
      swapSink(previous);
    }
  }
}

/** The error text of an `init` that must fail (throws if it does not). */
export function initError(cls, config = {}) {
  try {
    new Runtime(cls).init(typeof config === 'string' ? config : JSON.stringify(config));
  } catch (e) {
    if (e instanceof GuestError) return e.message;
    throw e;
  }
  throw new Error('init succeeded; expected an error');
}

/** init → process every batch → snapshot → restore into a fresh instance (a hot swap to the
 * same version), which must accept the snapshot. Returns the outputs. */
export function run(cls, batches, config = {}) {
  const harness = new Harness(cls, config);
  const outputs = [...batches].map((b) => harness.process(b));
  harness.swap();
  return outputs;
}

/** Throws what the host would refuse in `output`: broken accounting (points in input order,
 * same trajectory and seq), invalid point values, reserved flag bits, and columns the Wasm
 * boundary cannot carry. */
export function checkOutput(batch, output) {
  checkAccounting(batch, output);
  const out = output.points;
  for (const [name, Type] of Object.entries(FIELDS)) {
    const column = out[name];
    if (!(column instanceof Type)) {
      // componentize-js also takes plain arrays of the right kind of value.
      const bigint = Type === BigInt64Array;
      const bad = Array.isArray(column) ? column.findIndex((v) => (bigint ? typeof v !== 'bigint' : typeof v !== 'number')) : 0;
      if (!Array.isArray(column) || bad >= 0) {
        throw new TypeError(`${name} must be a ${Type.name} (or an array of ${bigint ? 'BigInts' : 'numbers'})${bad >= 0 && Array.isArray(column) ? `: point ${bad} is ${column[bad]}` : ''}`);
      }
    }
  }
  if (batch.records instanceof Points) {
    const rejected = new Set(output.rejected.map((r) => r.index));
    const src = batch.records;
    let j = 0;
    for (let i = 0; i < src.length; i++) {
      if (rejected.has(i)) continue;
      if (out.trajectory[j] !== src.trajectory[i] || out.seq[j] !== src.seq[i]) {
        throw new Error(`broken accounting: output point ${j} is trajectory ${out.trajectory[j]} seq ${out.seq[j]}, but input record ${i} is trajectory ${src.trajectory[i]} seq ${src.seq[i]}`);
      }
      j++;
    }
  }
  const table = output.zoneSets ?? batch.zoneSets;
  for (let i = 0; i < out.length; i++) {
    const why = invalid(out, i);
    if (why) throw new RangeError(`point ${i}: the host would refuse it: ${why}`);
    if (out.zones[i] !== NO_ZONES && out.zones[i] >= table.length) {
      throw new RangeError(`point ${i}: zones ${out.zones[i]} is not in the zone table of ${table.length}`);
    }
  }
}

function invalid(p, i) {
  if (!(Math.abs(p.lat[i]) <= 90)) return `lat is ${p.lat[i]} (must be a number within ±90)`;
  if (!(Math.abs(p.lon[i]) <= 180)) return `lon is ${p.lon[i]} (must be a number within ±180)`;
  const ts = BigInt(p.tsMs[i]);
  if (ts < 0n || ts > MAX_TS_MS) return `tsMs ${ts} is outside the years 1970–2100`;
  for (const name of ['altM', 'distM', 'speedMps', 'headingDeg']) {
    if (Math.abs(p[name][i]) === Infinity) return `${name} is infinite (NaN means absent)`;
  }
  if (p.flags[i] & RESERVED) return `flags set reserved bits 0x${(p.flags[i] & RESERVED).toString(16).padStart(4, '0')} (user bits are 16–31)`;
  return undefined;
}
