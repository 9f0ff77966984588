// Generated from wit/waystream.wit by scripts/wit-types.mjs (jco); do not edit.
declare module 'waystream:transform/types@0.3.1' {
  /**
   * Who a point belongs to: one entry per trajectory in the batch's `trajectories` table.
   */
  export interface Trajectory {
    /**
     * The user id (for Geolife, the `NNN` folder name).
     */
    user: string,
    /**
     * The trajectory id (for Geolife, the PLT file name without `.plt`).
     */
    id: string,
  }
  /**
   * Raw input: every line's bytes concatenated into one blob, plus one list per line
   * attribute ("columns", like `point-columns`): line `i` is element `i` of `ends`,
   * `trajectory` and `seq`, and the three lists have the same length. Lists of plain
   * numbers cross the boundary as one block copy; a list of records is written field by
   * field (measured: about 200 instructions per line more).
   */
  export interface RawLines {
    /**
     * The lines' bytes, without their terminators.
     */
    data: Uint8Array,
    /**
     * Exclusive end offset of each line in `data`; a line starts where the previous
     * one ended (or at 0).
     */
    ends: Uint32Array,
    /**
     * Index into the batch's `trajectories` table.
     */
    trajectory: Uint32Array,
    /**
     * Position of the line among the trajectory's records (0 = first point line).
     */
    seq: Uint32Array,
  }
  /**
   * Bits of a point's `flags`. Bits 0-15 are reserved for waystream's own transforms;
   * user transforms may use bits 16-31. (Plain `u32` rather than WIT `flags` so that
   * JavaScript and Python see a number, not an object per point.)
   * 
   * * bit 0 (`1`): `implausible-speed`, the speed from the previous point is above the
   *   configured limit (set by `speed`).
   * * bit 1 (`2`): `zone-enter`, the point is in a zone the previous point was not in
   *   (set by `geofence`).
   * * bit 2 (`4`): `zone-exit`, the previous point was in a zone this one is not in
   *   (set by `geofence`).
   * * bit 3 (`8`): `altitude-missing`, the source had no valid altitude (set by `parse-plt`).
   */
  export type PointFlags = number;
  /**
   * An index into the batch's `zone-sets` table; `0xffffffff` (`u32::MAX`) means the
   * point is in no zone, or its zones were not computed.
   */
  export type ZoneSetIndex = number;
  /**
   * A batch's points, one list per field ("columns"): point `i` is element `i` of every
   * list, and every list has the same length. Lists of plain numbers cross the Wasm
   * boundary as one block copy, where a list of records is read and written field by
   * field (measured: 84 ns per point per module, a third of the chain's time).
   * 
   * A value that may be absent is `NaN` (floats) or `0xffffffff` (`zones`) when absent.
   */
  export interface PointColumns {
    /**
     * Index into the batch's `trajectories` table.
     */
    trajectory: Uint32Array,
    /**
     * Position of the point in its trajectory. Geolife timestamps have 1-second
     * resolution and repeat, so order is by `seq`, never by `ts-ms`.
     */
    seq: Uint32Array,
    /**
     * Time in milliseconds since the Unix epoch, UTC.
     */
    tsMs: BigInt64Array,
    /**
     * WGS84 degrees.
     */
    lat: Float64Array,
    lon: Float64Array,
    /**
     * Altitude in metres; `NaN` when the source had none (Geolife's -777).
     */
    altM: Float64Array,
    /**
     * See `zone-set-index`.
     */
    zones: Uint32Array,
    /**
     * Great-circle distance from the previous point of the trajectory, metres; `NaN`
     * when not computed.
     */
    distM: Float64Array,
    /**
     * Speed from the previous point, metres per second; `NaN` when not computed.
     */
    speedMps: Float64Array,
    /**
     * Initial bearing from the previous point, degrees clockwise from north, [0, 360);
     * `NaN` when not computed.
     */
    headingDeg: Float64Array,
    /**
     * See `point-flags`.
     */
    flags: Uint32Array,
  }
  /**
   * What a batch carries: raw lines (for a parser such as `parse-plt`) or points.
   */
  export type Records = RecordsLines | RecordsPoints;
  export interface RecordsLines {
    tag: 'lines',
    val: RawLines,
  }
  export interface RecordsPoints {
    tag: 'points',
    val: PointColumns,
  }
  /**
   * The unit of work: one call to `process` per batch.
   */
  export interface Batch {
    /**
     * Per-batch identity table; the `trajectory` columns of points and lines index it.
     */
    trajectories: Array<Trajectory>,
    /**
     * Per-batch zone table: each entry is a sorted list of zone names;
     * `point-columns.zones` indexes it.
     */
    zoneSets: Array<Array<string>>,
    records: Records,
  }
  /**
   * One input record the transform refused, and why. It goes to the dead-letter sink.
   */
  export interface Rejection {
    /**
     * Index of the record in the batch's `records` (a line or a point).
     */
    index: number,
    reason: string,
  }
  /**
   * What `process` returns for a batch.
   * 
   * Every input record must be accounted for exactly once: either it produced one point
   * in `points` or it is listed in `rejected`. The host checks this and fails the whole
   * batch (to the dead-letter sink) otherwise.
   */
  export interface Output {
    /**
     * The points, in input order.
     */
    points: PointColumns,
    /**
     * A replacement for the batch's `zone-sets` table, when the transform changed it;
     * none keeps the input's table.
     */
    zoneSets?: Array<Array<string>>,
    rejected: Array<Rejection>,
  }
}
