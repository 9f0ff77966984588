// Generated from wit/waystream.wit by scripts/wit-types.mjs (jco); do not edit.
/// <reference path="./waystream-transform-types.d.ts" />
declare module 'waystream:transform/transform@0.3.1' {
  /**
   * Called once per instance before any batch, with the module's configuration from the
   * pipeline config as a JSON document (`{}` when there is none). An error refuses the
   * module: the host does not use it.
   */
  export function init(config: string): void;
  /**
   * Transforms one batch. An `err` fails the whole batch (every record goes to the
   * dead-letter sink with the message); use `output.rejected` for single bad records.
   */
  export function process(batch: Batch): Output;
  /**
   * The transform's state (for example the last point per trajectory), in a format of
   * the transform's choosing. The host hands it to the next version's `restore` on a
   * hot swap. Stateless transforms return an empty list.
   */
  export function snapshot(): Uint8Array;
  /**
   * Takes over state from `snapshot` (possibly of an older version). An error means the
   * format is not understood: the host logs it and the instance starts fresh.
   */
  export function restore(state: Uint8Array): void;
  export type Batch = import('waystream:transform/types@0.3.1').Batch;
  export type Output = import('waystream:transform/types@0.3.1').Output;
}
