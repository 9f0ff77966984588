// A waystream transform in JavaScript: flags points slower than a threshold as stops (user
// flag bit 16). Configured from the pipeline (`config = { max_speed_mps = 5.0 }`, default
// 0.5 m/s); the threshold lives on the instance, which the SDK keeps for the module's
// lifetime. A point whose speed is absent (NaN) is not a stop. It counts the points it has
// seen and hands the count over on a hot swap.
import { Transform, TransformError, flags, info, state } from '@waystream/guest';

/** User flag bit 16: the document shows it as `user_16`. */
export const STOP = flags.user(16);

export default class Stops extends Transform {
  init(config) {
    this.maxSpeed = config.max_speed_mps ?? 0.5;
    if (typeof this.maxSpeed !== 'number' || !(this.maxSpeed > 0)) {
      throw new TransformError(`max_speed_mps must be a positive number, not ${JSON.stringify(this.maxSpeed)}`);
    }
    this.seen = 0;
    info(`stops: max speed ${this.maxSpeed} m/s`);
  }

  process(batch) {
    const { points } = batch;
    // The columns directly (typed arrays): the hot loop of a transform that touches every point.
    const { speedMps, flags: flag } = points;
    for (let i = 0; i < flag.length; i++) {
      // NaN (no speed) compares false: such points stay unflagged.
      if (speedMps[i] < this.maxSpeed) flag[i] |= STOP;
    }
    this.seen += points.length;
    return points;
  }

  snapshot() {
    return state.save(1, { seen: this.seen });
  }

  restore(bytes) {
    const saved = state.load('stops', 1, bytes);
    if (saved === undefined) return;
    // JSON has no types to check: another transform's version-1 snapshot loads too (a
    // different module swapped into this slot), so check the shape before taking it.
    if (!Number.isSafeInteger(saved?.seen)) throw new TransformError('not a stops snapshot: no count of points seen');
    this.seen = saved.seen;
  }
}
