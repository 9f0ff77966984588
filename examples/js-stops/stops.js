// A waystream transform in JavaScript: flags points slower than a threshold as stops
// (user flag bit 16). Built with componentize-js against wit/waystream.wit.
import { log } from 'waystream:transform/log@0.3.0';

let maxSpeed = 0.5;
let seen = 0;

export const transform = {
  init(config) {
    const parsed = JSON.parse(config);
    if (parsed.max_speed_mps !== undefined) maxSpeed = parsed.max_speed_mps;
    log('info', `stops: max speed ${maxSpeed} m/s`);
  },
  process(batch) {
    if (batch.records.tag !== 'points') throw 'stops needs points';
    // Points come as columns: one typed array per field, absent values NaN.
    const points = batch.records.val;
    const { speedMps, flags } = points;
    for (let i = 0; i < flags.length; i++) {
      // NaN (no speed) compares false: such points stay unflagged.
      if (speedMps[i] < maxSpeed) flags[i] |= 1 << 16;
    }
    seen += flags.length;
    return { points, zoneSets: undefined, rejected: [] };
  },
  snapshot() {
    return new TextEncoder().encode(JSON.stringify({ version: 1, state: seen }));
  },
  restore(state) {
    if (state.length === 0) return;
    const s = JSON.parse(new TextDecoder().decode(state));
    if (s.version !== 1) throw `stops snapshot version ${s.version} unknown`;
    seen = s.state;
  },
};
