import type { Level, TransformClass } from './index.js';

/** The contract's `transform` export, as componentize-js expects it. */
export interface TransformExport {
  init(config: string): void;
  process(batch: unknown): unknown;
  snapshot(): Uint8Array;
  restore(state: Uint8Array): void;
}
/** Makes `cls` the component's transform; `hostLog` is the contract's log import. */
export declare function exportTransform(cls: TransformClass, hostLog: (level: Level, message: string) => void): TransformExport;
