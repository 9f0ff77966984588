// Type-checked (tsc --strict, by guest-sdk/check-polyglot.sh), never run: the SDK's
// declarations, including those generated from the WIT, must describe a transform as a
// TypeScript author writes one. The @ts-expect-error lines fail the check if the types
// stop catching those mistakes.
import { Batch, Level, NO_ZONES, Output, Points, Transform, flags, info, state } from '@waystream/guest';
import type { PointColumns, Rejection, Trajectory } from '@waystream/guest';
import { exportTransform } from '@waystream/guest/component';
import type { TransformExport } from '@waystream/guest/component';
import { Harness, point, pointsBatch } from '@waystream/guest/testing';

class SlowPoints extends Transform {
  limit = 1;

  init(config: Record<string, unknown>): void {
    this.limit = typeof config.limit === 'number' ? config.limit : 1;
    info(`limit ${this.limit}`);
  }

  process(batch: Batch): Output {
    const points: Points = batch.points;
    const rejected: Rejection[] = [];
    for (const row of points) {
      if (row.speedMps !== undefined && row.speedMps > this.limit) {
        row.flags |= flags.user(16);
      }
      if (row.zones === NO_ZONES) {
        rejected.push({ index: row.index, reason: 'no zone' });
      }
    }
    const kept = points.without(rejected.map((r) => r.index));
    return Output.rejecting(kept, rejected);
  }

  snapshot(): Uint8Array {
    return state.save(1, { limit: this.limit });
  }

  restore(bytes: Uint8Array): void {
    this.limit = state.load<{ limit: number }>('slow-points', 1, bytes)?.limit ?? this.limit;
  }
}

// The generated contract types.
const columns: PointColumns = new Points().columns();
const ts: BigInt64Array = columns.tsMs;
const who: Trajectory = { user: '000', id: '20081023025304' };
const level: Level = 'warn';
// @ts-expect-error: not a level of the contract's enum
const notALevel: Level = 'fatal';
// @ts-expect-error: timestamps are BigInt64Array, not plain numbers
const wrongTs: number[] = columns.tsMs;

// The component export matches the WIT's transform interface.
const exported: TransformExport = exportTransform(SlowPoints, (_level: Level, _message: string) => {});
const snapshot: Uint8Array = exported.snapshot();
// @ts-expect-error: init takes the config as a JSON string
exported.init({ limit: 3 });

// The native test path.
const harness = new Harness<SlowPoints>(SlowPoints, { limit: 2 });
const out: Output = harness.process(pointsBatch([point(0, { speedMps: 3 })], { trajectories: [who] }));

export { ts, level, notALevel, wrongTs, snapshot, out };
