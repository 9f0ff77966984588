//! A uniform grid over the zones: most points find their zones with one lookup.
//!
//! Testing a point against polygons is the expensive part of geofencing, and nearly every
//! point is far from any zone's edge. So the index cuts the zones' bounding box into a grid
//! of cells (about 1,000 per zone, between 2^16 and 2^20 in all) and, when the zones are
//! loaded, sorts each cell into one of two kinds:
//!
//! * **settled**: no zone's edge comes near the cell, so every point in it is in the same
//!   zones. The cell holds that zone set's id, and a lookup is a few arithmetic operations.
//! * **mixed**: some zones' edges cross the cell. The cell lists the zones that contain it
//!   whole and the *candidates* whose edges cross it; a point there is tested against the
//!   candidates only, with `geo`'s exact, edge-inclusive point-in-polygon test.
//!
//! An edge counts as crossing a cell when it comes within a millionth of a cell of it, so
//! the rounding of a point's cell coordinates cannot put it in a cell whose settled answer
//! is wrong for it. Building the grid walks each edge's cells and fills each row between
//! edges from one point-in-polygon test, so it costs about as much as the zones' outlines,
//! not their areas.

use geo::coordinate_position::{CoordPos, CoordinatePosition};
use geo::{BoundingRect, Coord, MultiPolygon, Rect};

use crate::zones::{SetId, SetTable, ZoneSet};

/// A cell value with this bit set is an offset into [`Grid::mixed`]; otherwise a set id.
const MIXED: u32 = 1 << 31;

/// Cells per zone the grid aims at, and its bounds in cells.
const CELLS_PER_ZONE: usize = 1024;
const MIN_CELLS: usize = 1 << 16;
const MAX_CELLS: usize = 1 << 20;
/// Cells per axis, at most (for very long, thin boxes).
const MAX_SIDE: usize = 1 << 14;

/// How near an edge may come to a cell, in cells, and still count as crossing it.
const MARGIN: f64 = 1e-6;

/// The grid: its placement, one value per cell, and the mixed cells' lists.
pub struct Grid {
    min: Coord,
    /// Cells per degree, along x (longitude) and y (latitude).
    scale: Coord,
    cols: usize,
    rows: usize,
    cells: Vec<u32>,
    /// Per mixed cell: `[n, m, n settled zone ids…, m candidate zone ids…]`.
    mixed: Vec<u32>,
}

/// What a lookup found for a point's cell.
pub enum Cell<'a> {
    /// Every point of the cell is in this zone set.
    Settled(SetId),
    /// The cell is in the `settled` zones whole; the point may also be in any of the
    /// `candidates` (both sorted by id).
    Mixed {
        settled: &'a [u32],
        candidates: &'a [u32],
    },
}

impl Grid {
    /// Builds the grid over `shapes` (zone `i` is `shapes[i]`), interning the settled cells'
    /// zone sets in `sets`.
    pub fn build(shapes: &[&MultiPolygon<f64>], sets: &mut SetTable) -> Self {
        let bounds: Vec<Option<Rect<f64>>> = shapes.iter().map(|s| s.bounding_rect()).collect();
        let Some(all) = bounds.iter().flatten().copied().reduce(union) else {
            return Grid::empty();
        };
        let mut grid = Grid::sized(all, shapes.len());
        let mut touches = Touches::new(grid.cells.len());
        for (zone, (shape, bounds)) in shapes.iter().zip(&bounds).enumerate() {
            if let Some(bounds) = bounds {
                grid.sort_cells_of(zone as u32, shape, *bounds, &mut touches);
            }
        }
        // Neighbouring cells mostly have the same zones: each cell's lists are compared
        // with the previous cell's before they are interned or stored again.
        let (mut settled, mut candidates) = (Vec::new(), Vec::new());
        let mut previous: Option<(Vec<u32>, Vec<u32>, u32)> = None;
        for cell in 0..grid.cells.len() {
            touches.of(cell, &mut settled, &mut candidates);
            if settled.is_empty() && candidates.is_empty() {
                continue;
            }
            if let Some((s, c, value)) = &previous
                && *s == settled
                && *c == candidates
            {
                grid.cells[cell] = *value;
                continue;
            }
            let value = if candidates.is_empty() {
                sets.intern(&ZoneSet::from_sorted(settled.clone())).0
            } else {
                let offset = grid.mixed.len() as u32 | MIXED;
                grid.mixed.push(settled.len() as u32);
                grid.mixed.push(candidates.len() as u32);
                grid.mixed.extend(&settled);
                grid.mixed.extend(&candidates);
                offset
            };
            grid.cells[cell] = value;
            previous = Some((settled.clone(), candidates.clone(), value));
        }
        grid
    }

    /// A grid for no zones: every point is in none.
    fn empty() -> Self {
        Grid {
            min: Coord { x: 0.0, y: 0.0 },
            scale: Coord { x: 0.0, y: 0.0 },
            cols: 0,
            rows: 0,
            cells: Vec::new(),
            mixed: Vec::new(),
        }
    }

    /// An all-empty grid over `bounds`, with about [`CELLS_PER_ZONE`] cells per zone.
    fn sized(bounds: Rect<f64>, zones: usize) -> Self {
        let cells = (zones * CELLS_PER_ZONE).clamp(MIN_CELLS, MAX_CELLS) as f64;
        // Square cells where the box allows; a flat box gets one row or column.
        let (w, h) = (
            bounds.width().max(f64::MIN_POSITIVE),
            bounds.height().max(f64::MIN_POSITIVE),
        );
        let side = (w * h / cells).sqrt();
        let count = |extent: f64| ((extent / side).ceil() as usize).clamp(1, MAX_SIDE);
        let (cols, rows) = (count(w), count(h));
        Grid {
            min: bounds.min(),
            scale: Coord {
                x: cols as f64 / w,
                y: rows as f64 / h,
            },
            cols,
            rows,
            cells: vec![SetId::EMPTY.0; cols * rows],
            mixed: Vec::new(),
        }
    }

    /// The zones (as the grid knows them) of the cell holding (x, y).
    #[inline]
    pub fn cell(&self, x: f64, y: f64) -> Cell<'_> {
        let (cx, cy) = (
            (x - self.min.x) * self.scale.x,
            (y - self.min.y) * self.scale.y,
        );
        // Outside the zones' bounding box (or NaN): in no zone. The box's far edges belong
        // to its last cells.
        if !(cx >= 0.0 && cx <= self.cols as f64 && cy >= 0.0 && cy <= self.rows as f64) {
            return Cell::Settled(SetId::EMPTY);
        }
        let (col, row) = (
            (cx as usize).min(self.cols - 1),
            (cy as usize).min(self.rows - 1),
        );
        let value = self.cells[row * self.cols + col];
        if value & MIXED == 0 {
            return Cell::Settled(SetId(value));
        }
        let at = (value & !MIXED) as usize;
        let (n, m) = (self.mixed[at] as usize, self.mixed[at + 1] as usize);
        let lists = &self.mixed[at + 2..at + 2 + n + m];
        let (settled, candidates) = lists.split_at(n);
        Cell::Mixed {
            settled,
            candidates,
        }
    }

    /// Whether the closed polygon set `shape` holds (x, y), edges included.
    #[inline]
    pub fn contains(shape: &MultiPolygon<f64>, x: f64, y: f64) -> bool {
        let coord = Coord { x, y };
        shape
            .iter()
            .any(|polygon| polygon.coordinate_position(&coord) != CoordPos::Outside)
    }

    /// Notes in `touches` each cell of `zone`'s bounding box that the zone's edges cross
    /// or that lies inside the zone.
    fn sort_cells_of(
        &self,
        zone: u32,
        shape: &MultiPolygon<f64>,
        bounds: Rect<f64>,
        touches: &mut Touches,
    ) {
        let (c0, c1) = self.col_range(bounds.min().x, bounds.max().x);
        let (r0, r1) = self.row_range(bounds.min().y, bounds.max().y);
        let width = c1 - c0 + 1;
        let mut crossed = vec![false; width * (r1 - r0 + 1)];
        let rings = shape
            .iter()
            .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()));
        for edge in rings.flat_map(|ring| ring.lines()) {
            let (a, b) = (edge.start, edge.end);
            let (f0, f1) = self.row_range(a.y.min(b.y), a.y.max(b.y));
            for row in f0.max(r0)..=f1.min(r1) {
                // Only the columns where the edge passes through this row's band.
                let (x0, x1) = self.x_extent_in_row(a, b, row);
                let (e0, e1) = self.col_range(x0, x1);
                for col in e0.max(c0)..=e1.min(c1) {
                    if self.edge_crosses(a, b, col, row) {
                        crossed[(row - r0) * width + (col - c0)] = true;
                    }
                }
            }
        }
        for row in r0..=r1 {
            // Neighbouring cells that no edge crosses are on the same side of every edge:
            // one point-in-polygon test per run of them.
            let mut run_inside: Option<bool> = None;
            for col in c0..=c1 {
                let cell = row * self.cols + col;
                if crossed[(row - r0) * width + (col - c0)] {
                    run_inside = None;
                    touches.add(cell, zone, true);
                    continue;
                }
                let inside = *run_inside.get_or_insert_with(|| {
                    let centre = self.cell_rect(col, row).center();
                    Self::contains(shape, centre.x, centre.y)
                });
                if inside {
                    touches.add(cell, zone, false);
                }
            }
        }
    }

    /// The x range of segment a–b within row `row`'s band of latitudes (widened by
    /// [`MARGIN`]).
    fn x_extent_in_row(&self, a: Coord, b: Coord, row: usize) -> (f64, f64) {
        let (lo, hi) = (a.x.min(b.x), a.x.max(b.x));
        if a.y == b.y {
            return (lo, hi);
        }
        let margin = MARGIN / self.scale.y;
        let y0 = self.min.y + row as f64 / self.scale.y - margin;
        let y1 = self.min.y + (row + 1) as f64 / self.scale.y + margin;
        let x_at = |y: f64| a.x + (b.x - a.x) * ((y - a.y) / (b.y - a.y)).clamp(0.0, 1.0);
        let (u, v) = (x_at(y0), x_at(y1));
        (u.min(v).max(lo), u.max(v).min(hi))
    }

    /// Whether the segment a–b comes within [`MARGIN`] of cell (col, row): their bounding
    /// boxes overlap and the cell's corners are not all strictly on one side of the line.
    fn edge_crosses(&self, a: Coord, b: Coord, col: usize, row: usize) -> bool {
        let rect = self.cell_rect(col, row);
        let margin = Coord {
            x: MARGIN / self.scale.x,
            y: MARGIN / self.scale.y,
        };
        let (min, max) = (rect.min() - margin, rect.max() + margin);
        if a.x.max(b.x) < min.x
            || a.x.min(b.x) > max.x
            || a.y.max(b.y) < min.y
            || a.y.min(b.y) > max.y
        {
            return false;
        }
        let d = b - a;
        let side = |x: f64, y: f64| d.x * (y - a.y) - d.y * (x - a.x);
        let corners = [
            side(min.x, min.y),
            side(max.x, min.y),
            side(min.x, max.y),
            side(max.x, max.y),
        ];
        !(corners.iter().all(|&s| s > 0.0) || corners.iter().all(|&s| s < 0.0))
    }

    /// The rectangle of cell (col, row).
    fn cell_rect(&self, col: usize, row: usize) -> Rect<f64> {
        let at = |c: usize, r: usize| Coord {
            x: self.min.x + c as f64 / self.scale.x,
            y: self.min.y + r as f64 / self.scale.y,
        };
        Rect::new(at(col, row), at(col + 1, row + 1))
    }

    /// The columns of the cells that [x0, x1] overlaps, widened by one.
    fn col_range(&self, x0: f64, x1: f64) -> (usize, usize) {
        cell_range(x0, x1, self.min.x, self.scale.x, self.cols)
    }

    /// The rows of the cells that [y0, y1] overlaps, widened by one.
    fn row_range(&self, y0: f64, y1: f64) -> (usize, usize) {
        cell_range(y0, y1, self.min.y, self.scale.y, self.rows)
    }
}

/// The cells along one axis that [v0, v1] overlaps, and one more on each side (so a cell
/// that only the margin reaches is never missed).
fn cell_range(v0: f64, v1: f64, min: f64, scale: f64, count: usize) -> (usize, usize) {
    let index = |v: f64| ((v - min) * scale).floor().clamp(0.0, (count - 1) as f64) as usize;
    (index(v0).saturating_sub(1), (index(v1) + 1).min(count - 1))
}

fn union(a: Rect<f64>, b: Rect<f64>) -> Rect<f64> {
    Rect::new(
        Coord {
            x: a.min().x.min(b.min().x),
            y: a.min().y.min(b.min().y),
        },
        Coord {
            x: a.max().x.max(b.max().x),
            y: a.max().y.max(b.max().y),
        },
    )
}

/// Which zones touch each cell, gathered zone by zone: a linked list per cell in one
/// array, so building the grid allocates nothing per cell.
struct Touches {
    /// Per cell: its most recent entry, or `NONE`.
    head: Vec<u32>,
    /// (zone, whether its edge crosses the cell, the cell's previous entry).
    entries: Vec<(u32, bool, u32)>,
}

impl Touches {
    const NONE: u32 = u32::MAX;

    fn new(cells: usize) -> Self {
        Touches {
            head: vec![Self::NONE; cells],
            entries: Vec::new(),
        }
    }

    fn add(&mut self, cell: usize, zone: u32, crossed: bool) {
        self.entries.push((zone, crossed, self.head[cell]));
        self.head[cell] = (self.entries.len() - 1) as u32;
    }

    /// The zones holding `cell` whole and those whose edges cross it, each sorted by id.
    fn of(&self, cell: usize, settled: &mut Vec<u32>, candidates: &mut Vec<u32>) {
        settled.clear();
        candidates.clear();
        let mut at = self.head[cell];
        while at != Self::NONE {
            let (zone, crossed, next) = self.entries[at as usize];
            if crossed {
                candidates.push(zone);
            } else {
                settled.push(zone);
            }
            at = next;
        }
        // Zones were added in id order; the lists run backwards.
        settled.reverse();
        candidates.reverse();
    }
}
