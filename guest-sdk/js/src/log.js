// Logging through the host (the contract's `log` import).
//
// Natively (tests) lines go to standard error, or to the harness that captures them. In a
// component, module top level runs while componentize-js pre-initialises it (at build
// time), when calling an import fails: lines are queued until the host's first call.

/** The contract's `level` enum, as componentize-js spells its cases. */
export const Level = Object.freeze({
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
});
const LEVELS = new Set(Object.values(Level));

/** Lines kept while the host cannot be called yet; later ones are counted, not kept. */
export const QUEUE_LIMIT = 64;

let sink = null;
let queue = null;
let dropped = 0;

/** Writes `message` (made a string) at `level` ('trace' … 'error'). */
export function log(level, message) {
  if (!LEVELS.has(level)) throw new TypeError(`unknown log level ${level}`);
  const text = String(message);
  if (sink) sink(level, text);
  else if (queue) {
    if (queue.length < QUEUE_LIMIT) queue.push([level, text]);
    else dropped++;
  } else console.error(`[${level.toUpperCase()}] ${text}`);
}

export const trace = (message) => log(Level.TRACE, message);
export const debug = (message) => log(Level.DEBUG, message);
export const info = (message) => log(Level.INFO, message);
export const warn = (message) => log(Level.WARN, message);
export const error = (message) => log(Level.ERROR, message);

/** Queues lines until `connect` (the component's state at build time). */
export function defer() {
  if (!sink && !queue) queue = [];
}

/** Sends lines to `fn(level, text)` from now on, after the queued ones. */
export function connect(fn) {
  sink = fn;
  const queued = queue ?? [];
  queue = null;
  for (const [level, text] of queued) log(level, text);
  if (dropped) {
    log(Level.WARN, `${dropped} log lines written before the first call were dropped`);
    dropped = 0;
  }
}

/** Swaps the sink, returning the previous one (the test harness captures lines). */
export function swapSink(fn) {
  const previous = sink;
  sink = fn;
  return previous;
}
