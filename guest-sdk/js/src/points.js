// Points as the contract moves them: columns, with a row view for code that thinks in points.
//
// componentize-js hands `point-columns` over as one typed array per field (`lat` a
// Float64Array, `tsMs` a BigInt64Array, `flags` a Uint32Array, …): a block copy, nothing
// converted. The SDK passes those arrays to your transform and sends back the ones you
// return. Absent values are NaN (floats) or NO_ZONES (`zones`).
//
// Fastest: the columns (`points.speedMps[i]`, `points.flags[i] |= bit`). Simplest: rows,
// `for (const p of points)` yields live views whose properties read and write the columns,
// absent values as `undefined`.

/** `zones` value meaning "in no zone, or zones not computed" (u32::MAX). */
export const NO_ZONES = 0xffffffff;

/** The columns, in the contract's order, with the typed array each one is. */
export const FIELDS = Object.freeze({
  trajectory: Uint32Array,
  seq: Uint32Array,
  tsMs: BigInt64Array,
  lat: Float64Array,
  lon: Float64Array,
  altM: Float64Array,
  zones: Uint32Array,
  distM: Float64Array,
  speedMps: Float64Array,
  headingDeg: Float64Array,
  flags: Uint32Array,
});
const NAMES = Object.keys(FIELDS);
/** Float columns where NaN means absent. */
export const OPTIONAL_FLOATS = Object.freeze(['altM', 'distM', 'speedMps', 'headingDeg']);

function toColumn(name, value) {
  if (value === undefined || value === null) {
    if (name === 'zones') return NO_ZONES;
    if (OPTIONAL_FLOATS.includes(name)) return NaN;
    throw new TypeError(`${name} cannot be absent`);
  }
  // A BigInt64Array takes only BigInts; timestamps in ms fit a Number exactly too.
  return name === 'tsMs' ? BigInt(value) : value;
}

function fromColumn(name, value) {
  if (name === 'zones') return value === NO_ZONES ? undefined : value;
  if (Number.isNaN(value)) return undefined;
  return value;
}

/** A live view of point `index`: reading a property reads its column, assigning writes it. */
export class Row {
  constructor(points, index) {
    this.points = points;
    this.index = index;
  }

  /** A copy of this point as a plain object (absent values `undefined`). */
  toPoint() {
    const point = {};
    for (const name of NAMES) point[name] = this[name];
    return point;
  }
}

// One accessor per field, generated so the list of fields is written once.
for (const name of NAMES) {
  Object.defineProperty(Row.prototype, name, {
    get() {
      return fromColumn(name, this.points[name][this.index]);
    },
    set(value) {
      this.points[name][this.index] = toColumn(name, value);
    },
    enumerable: true,
  });
}

/** A batch's points as columns (the contract's `point-columns`, camelCase). */
export class Points {
  /** Wraps `columns` (an object with one array per field), sharing the arrays. */
  constructor(columns = {}) {
    for (const name of NAMES) this[name] = columns[name] ?? new FIELDS[name](0);
  }

  /** Columns holding `points` (plain objects: trajectory, seq, tsMs, lat, lon, and any
   * of the others; absent ones `undefined`), in order. */
  static of(points) {
    const list = [...points];
    const columns = {};
    for (const name of NAMES) {
      const column = new FIELDS[name](list.length);
      list.forEach((p, i) => {
        column[i] = toColumn(name, p[name] ?? (name === 'flags' ? 0 : undefined));
      });
      columns[name] = column;
    }
    return new Points(columns);
  }

  /** The columns as a plain object (shared, not copied): what the host receives. */
  columns() {
    const columns = {};
    for (const name of NAMES) columns[name] = this[name];
    return columns;
  }

  get length() {
    return this.seq.length;
  }

  /** Row `index` (negative counts from the end); `undefined` out of range. */
  at(index) {
    const i = index < 0 ? index + this.length : index;
    return i >= 0 && i < this.length ? new Row(this, i) : undefined;
  }

  *[Symbol.iterator]() {
    for (let i = 0; i < this.length; i++) yield new Row(this, i);
  }

  /** New columns holding the points at `indices`, in that order. */
  take(indices) {
    const list = [...indices];
    const columns = {};
    for (const name of NAMES) columns[name] = FIELDS[name].from(list, (i) => this[name][i]);
    return new Points(columns);
  }

  /** New columns holding every point except those at `indices`. */
  without(indices) {
    const drop = new Set(indices);
    const keep = [];
    for (let i = 0; i < this.length; i++) if (!drop.has(i)) keep.push(i);
    return this.take(keep);
  }

  /** Throws unless every column has the same length and, given the size of the batch's
   * trajectory table, every `trajectory` is an entry of it. */
  check(trajectories) {
    const lengths = NAMES.map((name) => this[name]?.length);
    if (lengths.some((n) => n !== lengths[0])) {
      throw new TypeError(`point columns differ in length: ${NAMES.map((n, i) => `${n} ${lengths[i]}`).join(', ')}`);
    }
    if (trajectories !== undefined) {
      for (const t of this.trajectory) {
        if (!(t >= 0 && t < trajectories)) {
          throw new RangeError(`point refers to trajectory ${t}, not in the batch's table of ${trajectories}`);
        }
      }
    }
  }
}

/** Raw input lines (`raw-lines`): every line's bytes back to back in `data`, per-line
 * columns `ends` (exclusive end offsets), `trajectory` and `seq`. */
export class Lines {
  constructor({ data = new Uint8Array(0), ends = new Uint32Array(0), trajectory = new Uint32Array(0), seq = new Uint32Array(0) } = {}) {
    Object.assign(this, { data, ends, trajectory, seq });
  }

  /** Lines of trajectory 0 (strings or bytes), numbered from seq 0. */
  static of(lines, trajectory = 0) {
    const encoder = new TextEncoder();
    const chunks = [...lines].map((l) => (typeof l === 'string' ? encoder.encode(l) : l));
    const data = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    const ends = new Uint32Array(chunks.length);
    let at = 0;
    chunks.forEach((c, i) => {
      data.set(c, at);
      at += c.length;
      ends[i] = at;
    });
    return new Lines({ data, ends, trajectory: new Uint32Array(chunks.length).fill(trajectory), seq: Uint32Array.from(chunks, (_, i) => i) });
  }

  get length() {
    return this.ends.length;
  }

  /** Yields `{ index, trajectory, seq, data, text }` per line. */
  *[Symbol.iterator]() {
    const decoder = new TextDecoder();
    let start = 0;
    for (let i = 0; i < this.ends.length; i++) {
      const data = this.data.subarray(start, this.ends[i]);
      start = this.ends[i];
      yield { index: i, trajectory: this.trajectory[i], seq: this.seq[i], data, text: decoder.decode(data) };
    }
  }
}

/** The unit of work: one `process` call per batch. */
export class Batch {
  constructor(trajectories, zoneSets, records) {
    /** `[{ user, id }]`: the points' `trajectory` indexes it. */
    this.trajectories = trajectories;
    /** `[[zone names]]`: the points' `zones` indexes it. */
    this.zoneSets = zoneSets;
    /** Points or Lines. */
    this.records = records;
  }

  /** The batch's points; throws when it holds raw lines. */
  get points() {
    if (!(this.records instanceof Points)) throw new TypeError('this transform needs points; the batch holds raw lines (put it after parse-plt)');
    return this.records;
  }

  /** The batch's raw lines; throws when it holds points. */
  get lines() {
    if (!(this.records instanceof Lines)) throw new TypeError('this transform needs raw lines; the batch holds points');
    return this.records;
  }

  /** The zone names of a point's `zones` index (`[]` for NO_ZONES). */
  zones(zoneSet) {
    return zoneSet === NO_ZONES ? [] : this.zoneSets[zoneSet];
  }
}

/** What `process` returns: every input record is one of `points` (in input order) or in
 * `rejected` (`{ index, reason }`). `zoneSets`: a replacement table, or undefined to keep
 * the input's. Returning bare Points means `new Output(points)`. */
export class Output {
  constructor(points, rejected = [], zoneSets = undefined) {
    this.points = points;
    this.rejected = rejected;
    this.zoneSets = zoneSets;
  }

  /** The output of `points` less the rejected ones (by input index). */
  static rejecting(points, rejected, zoneSets = undefined) {
    return new Output(points.without(rejected.map((r) => r.index)), rejected, zoneSets);
  }
}
