// The component glue: the contract's `transform` export, routed to one long-lived instance.
//
// Used by the entry module `waystream-guest-js build` generates:
//
//   import { log } from 'waystream:transform/log@0.3.1';
//   import { exportTransform } from '@waystream/guest/component';
//   import Stops from './stops.js';
//   export const transform = exportTransform(Stops, log);
//
// The host's log import is passed in rather than imported here, so this module (and the
// whole SDK) also loads in node, where 'waystream:…' resolves to nothing.

import { connect, defer, error, info, log, warn, debug, Level } from './log.js';
import { Batch, Lines, Points } from './points.js';
import { GuestError, Runtime } from './runtime.js';

// Module top level runs at build time (componentize-js pre-initialises the component),
// where calling an import fails: queue log lines until the host's first call. console.*
// goes to the host's log (the component has no stdio: the build disables it).
defer();
const format = (args) => args.map((a) => (typeof a === 'string' ? a : safeInspect(a))).join(' ');
function safeInspect(value) {
  try {
    return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? `${v}n` : v));
  } catch {
    return String(value);
  }
}
const hostConsole = {
  log: (...args) => info(format(args)),
  info: (...args) => info(format(args)),
  debug: (...args) => debug(format(args)),
  warn: (...args) => warn(format(args)),
  error: (...args) => error(format(args)),
  trace: (...args) => log(Level.TRACE, format(args)),
};
// Only inside the component (node has `process`): this module is evaluated before the app's,
// so the app's top-level console calls are queued too.
if (globalThis.process === undefined) globalThis.console = hostConsole;

/** Makes `cls` the component's transform; returns the object to export as `transform`.
 * `hostLog` is the contract's log import. */
export function exportTransform(cls, hostLog) {
  if (typeof cls !== 'function') throw new TypeError('exportTransform needs the transform class');
  const runtime = new Runtime(cls);
  let connected = false;
  const enter = () => {
    if (!connected) {
      connected = true;
      connect(hostLog);
    }
    return runtime;
  };
  // componentize-js: a thrown string is the result's `err`; anything else would trap.
  const call = (fn) => {
    try {
      return fn(enter());
    } catch (e) {
      throw e instanceof GuestError ? e.message : String(e);
    }
  };
  return {
    init: (config) => call((rt) => rt.init(config)),
    process: (batch) => call((rt) => toWit(rt.process(fromWit(batch)))),
    snapshot: () => call((rt) => rt.snapshot()),
    restore: (state) => call((rt) => rt.restore(state)),
  };
}

function fromWit(batch) {
  const { tag, val } = batch.records;
  const records = tag === 'points' ? new Points(val) : new Lines(val);
  return new Batch(batch.trajectories, batch.zoneSets, records);
}

function toWit(output) {
  return {
    points: output.points.columns(),
    zoneSets: output.zoneSets,
    rejected: output.rejected.map(({ index, reason }) => ({ index, reason: String(reason) })),
  };
}
