import type { Batch, Level, Output, PointInit, Trajectory, TransformClass } from './index.js';

export declare const DEFAULT_TS_MS: bigint;
export declare function trajectory(user?: string, id?: string): Trajectory;
export declare function point(
  seq?: number,
  fields?: Partial<Omit<PointInit, 'seq'>> & { tsMs?: bigint | number },
): PointInit & { tsMs: bigint };
export declare function pointsBatch(points: Iterable<PointInit>, options?: { trajectories?: Trajectory[]; zoneSets?: string[][] }): Batch;
export declare function linesBatch(lines: Iterable<string | Uint8Array>, options?: { trajectories?: Trajectory[] }): Batch;

/** One transform instance, called as the host would. */
export declare class Harness<T = unknown> {
  constructor(cls: TransformClass, config?: Record<string, unknown> | string);
  readonly instance: T;
  logs: Array<[Level, string]>;
  process(batch: Batch): Output;
  processError(batch: Batch): string;
  snapshot(): Uint8Array;
  restore(state: Uint8Array): void;
  swap(cls?: TransformClass, config?: Record<string, unknown> | string): Harness<T>;
}
export declare function initError(cls: TransformClass, config?: Record<string, unknown> | string): string;
export declare function run(cls: TransformClass, batches: Iterable<Batch>, config?: Record<string, unknown> | string): Output[];
export declare function checkOutput(batch: Batch, output: Output): void;
