import { test } from 'node:test';
import assert from 'node:assert/strict';

import { CONTRACT, Level, Output, Points, Transform, TransformError, info, state, warn } from '../src/index.js';
import { Harness, initError, linesBatch, point, pointsBatch, run, trajectory } from '../src/testing.js';
import { exportTransform } from '../src/component.js';
import Throws from './guests/throws.js';

class Counter extends Transform {
  init(config) {
    this.step = config.step ?? 1;
    this.count = 0;
    info(`step ${this.step}`);
  }
  process(batch) {
    for (const p of batch.points) {
      if (batch.trajectories[p.trajectory].id.startsWith('bad')) throw new Error('bad point');
    }
    this.count += this.step * batch.points.length;
    return batch.points;
  }
  snapshot() {
    if (this.count > 100) throw new Error('cannot save');
    return state.save(1, this.count);
  }
  restore(bytes) {
    this.count = state.load('counter', 1, bytes) ?? this.count;
  }
}

test('the instance and its config live from init to every process; hot swaps hand state over', () => {
  const h = new Harness(Counter, { step: 10 });
  h.process(pointsBatch([point(0), point(1)]));
  h.process(pointsBatch([point(2)]));
  assert.equal(h.instance.count, 30);
  assert.deepEqual(h.logs, [[Level.INFO, 'step 10']]);
  assert.equal(h.swap().instance.count, 30);
  assert.equal(run(Counter, [pointsBatch([point(0)])]).length, 1);
});

test('process errors carry name, message and stack', () => {
  const h = new Harness(Counter);
  const bad = pointsBatch([point(0)], { trajectories: [trajectory('u', 'bad1')] });
  assert.throws(() => h.process(bad), /bad point/);
  const text = h.processError(bad);
  assert.match(text, /^Error: bad point\n {2}at Counter\.process /);
  assert.doesNotMatch(text, /runtime\.js|component\.js/); // the stack stops at the SDK
  assert.match(new Harness(Throws).processError(bad), /^Error: bad point\n {2}at checkPoint /);
  assert.equal(new Harness(Throws).process(pointsBatch([point(0)])).points.length, 1);
});

test('init errors refuse the module', () => {
  class Picky extends Transform {
    init() {
      throw new TransformError('max_speed_mps must be positive');
    }
  }
  assert.equal(initError(Picky), 'max_speed_mps must be positive');
  assert.match(initError(Counter, '[1]'), /^the config must be a JSON object/);
  assert.throws(() => initError(Counter), /expected an error/);
  assert.throws(() => new Harness(Transform).restore(new Uint8Array([1])), /keeps no state/);
});

test('the harness refuses what the host would', () => {
  class Bad extends Transform {
    init(config) {
      this.mode = config.mode;
    }
    process(batch) {
      const p = batch.points;
      switch (this.mode) {
        case 'reserved': p.flags[0] |= 1 << 4; return p;
        case 'lost': return p.without([0]);
        case 'lat': p.lat[0] = 91; return p;
        case 'reorder': return p.take([1, 0]);
        case 'numbers': return new Points({ ...p.columns(), tsMs: [1, 2] });
        case 'nothing': return undefined;
        default: return p;
      }
    }
  }
  const batch = () => pointsBatch([point(0), point(1)]);
  for (const [mode, message] of [
    ['reserved', /reserved bits 0x0010/],
    ['lat', /lat is 91/],
    ['reorder', /output point 0 is trajectory 0 seq 1/],
    ['numbers', /tsMs must be a BigInt64Array \(or an array of BigInts\): point 0 is 1/],
  ]) {
    assert.throws(() => new Harness(Bad, { mode }).process(batch()), message);
  }
  assert.match(new Harness(Bad, { mode: 'lost' }).processError(batch()), /broken accounting: process returned 1 points and 0 rejections for 2/);
  assert.match(new Harness(Bad, { mode: 'nothing' }).processError(batch()), /process returned undefined/);
});

test('rejections and raw lines', () => {
  class Parse extends Transform {
    process(batch) {
      const points = [];
      const rejected = [];
      for (const line of batch.lines) {
        const [lat, lon] = line.text.split(',').map(Number);
        if (Number.isNaN(lat) || Number.isNaN(lon)) rejected.push({ index: line.index, reason: `not lat,lon: ${line.text}` });
        else points.push(point(line.seq, { trajectory: line.trajectory, lat, lon }));
      }
      warn(`${rejected.length} rejected`);
      return new Output(Points.of(points), rejected);
    }
  }
  const h = new Harness(Parse);
  const out = h.process(linesBatch(['39.9,116.4', 'nope', '40,116']));
  assert.deepEqual([...out.points.lat], [39.9, 40]);
  assert.deepEqual(out.rejected, [{ index: 1, reason: 'not lat,lon: nope' }]);
  assert.deepEqual(h.logs.at(-1), [Level.WARN, '1 rejected']);
  assert.match(new Harness(Parse).processError(pointsBatch([point(0)])), /needs raw lines/);
});

test('the component glue: errors are thrown strings (err), not Errors (traps); logs wait for the first call', () => {
  const host = [];
  info('logged before the first call'); // importing component.js deferred logging: queued
  const exported = exportTransform(Counter, (level, text) => host.push([level, text]));
  assert.throws(() => exported.process(witBatch('t')), (e) => typeof e === 'string' && /called before a successful init/.test(e));
  exported.init('{"step": 2}');
  const out = exported.process(witBatch('t'));
  assert.ok(out.points.lat instanceof Float64Array);
  assert.equal(out.zoneSets, undefined);
  assert.throws(() => exported.process(witBatch('bad1')), (e) => typeof e === 'string' && e.startsWith('Error: bad point\n'));
  assert.deepEqual(new TextDecoder().decode(exported.snapshot()), '{"version":1,"state":2}');
  exported.restore(state.save(1, 500));
  assert.equal(exported.snapshot().length, 0); // snapshot cannot fail: logged, no state
  const texts = host.map(([, text]) => text);
  assert.ok(texts.indexOf('logged before the first call') < texts.indexOf('step 2'), JSON.stringify(host));
  assert.equal(host.at(-1)[0], 'error');
  assert.match(host.at(-1)[1], /snapshot failed, handing over no state: Error: cannot save/);
});

function witBatch(id) {
  // What componentize-js hands process: camelCase, a variant as { tag, val }.
  return { trajectories: [{ user: 'u', id }], zoneSets: [], records: { tag: 'points', val: Points.of([point(0)]).columns() } };
}

test('the bundled WIT is the repository contract', async () => {
  const { readFile, access } = await import('node:fs/promises');
  const bundled = await readFile(new URL('../wit/waystream.wit', import.meta.url));
  assert.ok(bundled.includes(`package ${CONTRACT};`), `the bundled WIT declares ${CONTRACT}`);
  const repo = new URL('../../../wit/waystream.wit', import.meta.url);
  try {
    await access(repo);
  } catch {
    return; // not inside the waystream repository
  }
  assert.ok(bundled.equals(await readFile(repo)), 'copy wit/waystream.wit into guest-sdk/js/wit/');
});
