// @waystream/guest: write a waystream transform in JavaScript.
//
// A transform is a class: extend Transform, keep state on `this`, return the batch's points
// (changed in place) or an Output with rejections. Test it with node --test and
// `@waystream/guest/testing`; build it with `waystream-guest-js build app.js -o app.wasm`.

export { Level, log, trace, debug, info, warn, error } from './log.js';
export { TransformError, describe } from './errors.js';
export { NO_ZONES, FIELDS, Points, Row, Lines, Batch, Output } from './points.js';
import { TransformError } from './errors.js';

/** The contract this SDK implements (`wit/waystream.wit` inside the package). */
export const CONTRACT = 'waystream:transform@0.3.1';

/** Bits of a point's `flags` (`point-flags`, a plain u32). Bits 0-3 are set by waystream's
 * own transforms, 4-15 are reserved for them (the host refuses a point that sets one),
 * user transforms use 16-31 (`user_16` … `user_31` in the documents). */
export const flags = Object.freeze({
  IMPLAUSIBLE_SPEED: 1,
  ZONE_ENTER: 2,
  ZONE_EXIT: 4,
  ALTITUDE_MISSING: 8,
  RESERVED: 0x0000fff0,
  USER: 0xffff0000,
  /** The mask of user flag `bit` (16-31), as a positive number. */
  user(bit) {
    if (!(Number.isInteger(bit) && bit >= 16 && bit <= 31)) throw new RangeError(`user flags are bits 16-31, not ${bit}`);
    return 2 ** bit;
  },
});

/** The base class of a transform.
 *
 * The SDK creates one instance per module instance (with no constructor arguments), calls
 * `init(config)` once, then `process(batch)` for every batch, so state on `this` lasts from
 * batch to batch and, through `snapshot`/`restore`, across hot swaps. Anything thrown by
 * `init`, `process` or `restore` becomes the contract's `err` with its name, message and
 * stack (a thrown Error would otherwise trap the instance); throw a TransformError for a
 * message alone. */
export class Transform {
  /** Reads the module's config (the pipeline's `config` table, parsed; `{}` when none). */
  init(_config) {}

  /** Transforms one batch: returns an Output, or the Points (no rejections, same zone table). */
  process(_batch) {
    throw new Error(`${this.constructor.name} does not implement process`);
  }

  /** The state for the next version (see `state`); an empty array when there is none. */
  snapshot() {
    return new Uint8Array(0);
  }

  /** Takes over a previous version's state. The default accepts only no state. */
  restore(state) {
    if (state.length) throw new TransformError(`${this.constructor.name} keeps no state; starting fresh`);
  }
}

/** Versioned state for snapshot/restore, in the Rust SDK's JSON layout
 * (`{"version": N, "state": …}`), so any language's next version can read it. */
export const state = Object.freeze({
  /** `value` (JSON-serialisable) with its layout `version`, as bytes. */
  save(version, value) {
    return new TextEncoder().encode(JSON.stringify({ version, state: value }));
  },
  /** The state `save` wrote with `version`; `undefined` for no state; throws a
   * TransformError naming `transform` for anything else. */
  load(transform, version, bytes) {
    if (!bytes || bytes.length === 0) return undefined;
    let doc;
    try {
      doc = JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      throw new TransformError(`not a ${transform} snapshot: ${e.message}`);
    }
    if (doc?.version !== version) {
      throw new TransformError(`${transform} snapshot version ${doc?.version} is not the version ${version} this build reads`);
    }
    return doc.state;
  },
});
