// A hostile guest for the host's tests: throws an Error in process for a trajectory whose id
// starts with "bad", so the dead letter's cause must carry "Error: bad point" and a stack
// line. Built by guest-sdk/check-polyglot.sh into $WAYSTREAM_TARGET/modules/js-throws.wasm.
import { Transform } from '@waystream/guest';

export default class Throws extends Transform {
  process(batch) {
    const { points } = batch;
    for (const t of points.trajectory) {
      if (batch.trajectories[t].id.startsWith('bad')) checkPoint(t);
    }
    return points;
  }
}

function checkPoint() {
  throw new Error('bad point');
}
