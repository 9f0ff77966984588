// Routes the contract's calls to one long-lived transform instance. Shared by the component
// glue (component.js) and the native harness (testing.js), so tests run the same routing,
// error conversion and output checks as the component.

import { describe, TransformError } from './errors.js';
import { error as logError } from './log.js';
import { Output, Points } from './points.js';

/** A call that ends in the contract's `err`: `message` is the text the host gets,
 * `cause` what was thrown. */
export class GuestError extends Error {
  constructor(text, cause) {
    super(text, { cause });
    this.name = 'GuestError';
  }
}

/** Calls the transform's code. Its name marks where the SDK's frames begin in a stack
 * (errors.js cuts the stack there: the rest says nothing about the error, and in a
 * component it names a temporary build folder). */
export function __waystream_user_code__(target, method, arg) {
  return method === 'new' ? new target() : target[method](arg);
}
const user = __waystream_user_code__;

/** One transform class and its instance, created by `init`. */
export class Runtime {
  constructor(cls) {
    this.cls = cls;
    this.instance = undefined;
  }

  init(configText) {
    let instance;
    try {
      const config = configText.trim() ? JSON.parse(configText) : {};
      if (config === null || typeof config !== 'object' || Array.isArray(config)) {
        throw new TransformError(`the config must be a JSON object, not ${configText.slice(0, 80)}`);
      }
      instance = user(this.cls, 'new');
      user(instance, 'init', config);
    } catch (e) {
      throw new GuestError(describe(e), e);
    }
    this.instance = instance;
  }

  process(batch) {
    const instance = this.#instance();
    try {
      const output = normalise(user(instance, 'process', batch));
      checkAccounting(batch, output);
      return output;
    } catch (e) {
      throw new GuestError(describe(e), e);
    }
  }

  snapshot() {
    if (!this.instance) return new Uint8Array(0);
    try {
      const bytes = user(this.instance, 'snapshot');
      return bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes ?? []);
    } catch (e) {
      // The contract's snapshot cannot fail: say why, hand over no state.
      logError(`snapshot failed, handing over no state: ${describe(e)}`);
      return new Uint8Array(0);
    }
  }

  restore(bytes) {
    const instance = this.#instance();
    try {
      user(instance, 'restore', bytes);
    } catch (e) {
      throw new GuestError(describe(e), e);
    }
  }

  #instance() {
    if (!this.instance) throw new GuestError(`${this.cls.name} was called before a successful init`);
    return this.instance;
  }
}

/** `process`'s return value as an Output. */
export function normalise(result) {
  if (result instanceof Output) return result;
  if (result instanceof Points) return new Output(result);
  throw new TransformError(`process returned ${result === null ? 'null' : typeof result === 'object' ? result.constructor?.name : typeof result}; return an Output or the batch's Points`);
}

/** The cheap half of the host's checks, with clearer messages: every column as long as the
 * others, every record accounted for once. (The harness adds the rest.) */
export function checkAccounting(batch, output) {
  const { points, rejected } = output;
  if (!(points instanceof Points)) throw new TransformError('Output.points must be Points');
  points.check(batch.trajectories.length);
  const n = batch.records.length;
  if (points.length + rejected.length !== n) {
    throw new TransformError(`broken accounting: process returned ${points.length} points and ${rejected.length} rejections for ${n} records`);
  }
  const seen = new Set();
  for (const r of rejected) {
    if (!(Number.isInteger(r.index) && r.index >= 0 && r.index < n) || seen.has(r.index)) {
      throw new TransformError(`rejection index ${r.index} is out of range or repeated`);
    }
    seen.add(r.index);
  }
}
