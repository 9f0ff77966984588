// Types of @waystream/guest. The contract's shapes (`Level`, `PointColumns`, `Trajectory`,
// `Rejection`, the export's signatures) come from types/wit/, which scripts/wit-types.mjs
// generates from wit/waystream.wit with jco; the SDK's own classes are declared here.
/// <reference path="./wit/transform-module.d.ts" />
import type * as Types from 'waystream:transform/types@0.3.1';
import type * as LogImport from 'waystream:transform/log@0.3.1';

/** The contract's `level` enum. */
export type Level = LogImport.Level;
export declare const Level: Readonly<{ TRACE: 'trace'; DEBUG: 'debug'; INFO: 'info'; WARN: 'warn'; ERROR: 'error' }>;
export declare function log(level: Level, message: unknown): void;
export declare function trace(message: unknown): void;
export declare function debug(message: unknown): void;
export declare function info(message: unknown): void;
export declare function warn(message: unknown): void;
export declare function error(message: unknown): void;

/** An error whose message is the whole cause (no name, no stack). */
export declare class TransformError extends Error {}
/** The error text the SDK hands the host for `e`: `Name: message` and the stack, ≤ 3 KiB. */
export declare function describe(e: unknown, limit?: number): string;

/** The contract this SDK implements. */
export declare const CONTRACT: 'waystream:transform@0.3.1';
/** `zones` value meaning "no zone / not computed" (u32::MAX). */
export declare const NO_ZONES: 0xffffffff;

/** The contract's `point-columns`: one typed array per field; absent = NaN / NO_ZONES. */
export type PointColumns = Types.PointColumns;
export declare const FIELDS: Readonly<{ [K in keyof PointColumns]: { new (length: number): PointColumns[K] } }>;

/** One point as a plain object; absent values undefined. */
export interface Point {
  trajectory: number;
  seq: number;
  tsMs: bigint;
  lat: number;
  lon: number;
  altM?: number;
  zones?: number;
  distM?: number;
  speedMps?: number;
  headingDeg?: number;
  flags: number;
}
/** What `Points.of` takes: a Point whose timestamp may be a Number too. */
export type PointInit = Omit<Point, 'tsMs' | 'flags'> & { tsMs: bigint | number; flags?: number };

/** A live view of one point: properties read and write the columns. */
export declare class Row implements Point {
  readonly points: Points;
  readonly index: number;
  trajectory: number;
  seq: number;
  /** Reads a BigInt; takes a BigInt or a Number. */
  tsMs: bigint;
  lat: number;
  lon: number;
  altM: number | undefined;
  zones: number | undefined;
  distM: number | undefined;
  speedMps: number | undefined;
  headingDeg: number | undefined;
  flags: number;
  toPoint(): Point;
}

/** A batch's points as columns, iterable as rows. */
export declare class Points implements PointColumns {
  constructor(columns?: Partial<PointColumns>);
  static of(points: Iterable<PointInit>): Points;
  trajectory: Uint32Array;
  seq: Uint32Array;
  tsMs: BigInt64Array;
  lat: Float64Array;
  lon: Float64Array;
  altM: Float64Array;
  zones: Uint32Array;
  distM: Float64Array;
  speedMps: Float64Array;
  headingDeg: Float64Array;
  flags: Uint32Array;
  readonly length: number;
  columns(): PointColumns;
  at(index: number): Row | undefined;
  [Symbol.iterator](): Iterator<Row>;
  take(indices: Iterable<number>): Points;
  without(indices: Iterable<number>): Points;
  check(trajectories?: number): void;
}

/** One raw input line. */
export interface Line {
  index: number;
  trajectory: number;
  seq: number;
  data: Uint8Array;
  text: string;
}
/** The contract's `raw-lines`, iterable as lines. */
export declare class Lines {
  constructor(columns?: { data?: Uint8Array; ends?: Uint32Array; trajectory?: Uint32Array; seq?: Uint32Array });
  static of(lines: Iterable<string | Uint8Array>, trajectory?: number): Lines;
  data: Uint8Array;
  ends: Uint32Array;
  trajectory: Uint32Array;
  seq: Uint32Array;
  readonly length: number;
  [Symbol.iterator](): Iterator<Line>;
}

/** Who a point belongs to (the contract's `trajectory`). */
export type Trajectory = Types.Trajectory;
/** A refused record and why (the contract's `rejection`). */
export type Rejection = Types.Rejection;

/** The unit of work. */
export declare class Batch {
  constructor(trajectories: Trajectory[], zoneSets: string[][], records: Points | Lines);
  trajectories: Trajectory[];
  zoneSets: string[][];
  records: Points | Lines;
  /** Throws when the batch holds raw lines. */
  readonly points: Points;
  /** Throws when the batch holds points. */
  readonly lines: Lines;
  zones(zoneSet: number): string[];
}

/** What `process` returns. */
export declare class Output {
  constructor(points: Points, rejected?: Rejection[], zoneSets?: string[][]);
  static rejecting(points: Points, rejected: Rejection[], zoneSets?: string[][]): Output;
  points: Points;
  rejected: Rejection[];
  zoneSets: string[][] | undefined;
}

/** The base class of a transform: one instance for the module's lifetime. */
export declare class Transform {
  init(config: Record<string, unknown>): void;
  process(batch: Batch): Output | Points;
  snapshot(): Uint8Array;
  restore(state: Uint8Array): void;
}
export type TransformClass = new () => Transform;

export declare const flags: Readonly<{
  IMPLAUSIBLE_SPEED: 1;
  ZONE_ENTER: 2;
  ZONE_EXIT: 4;
  ALTITUDE_MISSING: 8;
  RESERVED: 0x0000fff0;
  USER: 0xffff0000;
  /** The mask of user flag `bit` (16-31). */
  user(bit: number): number;
}>;

export declare const state: Readonly<{
  save(version: number, value: unknown): Uint8Array;
  load<T = unknown>(transform: string, version: number, bytes: Uint8Array): T | undefined;
}>;
