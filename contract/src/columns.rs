//! Methods of the contract's generated types, for both sides of the boundary.
//!
//! The guest SDK (wit-bindgen) and the host (wasmtime's `bindgen!`) each generate their
//! own Rust types from `wit/waystream.wit`: two `PointColumns`, two `RawLines`, two
//! `Batch`es with the same fields. [`__contract_methods!`](crate::__contract_methods)
//! stamps the same methods onto both, so the row view of points, the line iterator and
//! the record counts are written once.

/// Implements the methods of `point-columns`, `raw-lines` and `batch` on the generated
/// types named `PointColumns`, `RawLines`, `Batch` and `Records` where it is invoked.
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_methods {
    () => {
        impl PointColumns {
            /// Empty columns with room for `n` points.
            pub fn with_capacity(n: usize) -> Self {
                Self {
                    trajectory: Vec::with_capacity(n),
                    seq: Vec::with_capacity(n),
                    ts_ms: Vec::with_capacity(n),
                    lat: Vec::with_capacity(n),
                    lon: Vec::with_capacity(n),
                    alt_m: Vec::with_capacity(n),
                    zones: Vec::with_capacity(n),
                    dist_m: Vec::with_capacity(n),
                    speed_mps: Vec::with_capacity(n),
                    heading_deg: Vec::with_capacity(n),
                    flags: Vec::with_capacity(n),
                }
            }

            /// Number of points (the length of `seq`).
            pub fn len(&self) -> usize {
                self.seq.len()
            }

            /// Whether there are no points.
            pub fn is_empty(&self) -> bool {
                self.seq.is_empty()
            }

            /// Whether every column has as many entries as `seq` (a module's output may not).
            pub fn is_rectangular(&self) -> bool {
                let n = self.len();
                [
                    self.trajectory.len(),
                    self.ts_ms.len(),
                    self.lat.len(),
                    self.lon.len(),
                    self.alt_m.len(),
                    self.zones.len(),
                    self.dist_m.len(),
                    self.speed_mps.len(),
                    self.heading_deg.len(),
                    self.flags.len(),
                ]
                .iter()
                .all(|&len| len == n)
            }

            /// Point `i`, if there is one (and every column has it).
            pub fn get(&self, i: usize) -> Option<$crate::Point> {
                use $crate::point::present;
                Some($crate::Point {
                    trajectory: *self.trajectory.get(i)?,
                    seq: *self.seq.get(i)?,
                    ts_ms: *self.ts_ms.get(i)?,
                    lat: *self.lat.get(i)?,
                    lon: *self.lon.get(i)?,
                    alt_m: present(*self.alt_m.get(i)?),
                    zones: Some(*self.zones.get(i)?).filter(|&z| z != $crate::NO_ZONES),
                    dist_m: present(*self.dist_m.get(i)?),
                    speed_mps: present(*self.speed_mps.get(i)?),
                    heading_deg: present(*self.heading_deg.get(i)?),
                    flags: *self.flags.get(i)?,
                })
            }

            /// Every point, in order (up to the shortest column).
            pub fn iter(&self) -> impl Iterator<Item = $crate::Point> + '_ {
                (0..self.len()).map_while(|i| self.get(i))
            }

            /// Appends one point.
            pub fn push(&mut self, p: $crate::Point) {
                self.trajectory.push(p.trajectory);
                self.seq.push(p.seq);
                self.ts_ms.push(p.ts_ms);
                self.lat.push(p.lat);
                self.lon.push(p.lon);
                self.alt_m.push(p.alt_m.unwrap_or(f64::NAN));
                self.zones.push(p.zones.unwrap_or($crate::NO_ZONES));
                self.dist_m.push(p.dist_m.unwrap_or(f64::NAN));
                self.speed_mps.push(p.speed_mps.unwrap_or(f64::NAN));
                self.heading_deg.push(p.heading_deg.unwrap_or(f64::NAN));
                self.flags.push(p.flags);
            }

            /// Keeps the first `len` points (of every column), drops the rest.
            pub fn truncate(&mut self, len: usize) {
                self.trajectory.truncate(len);
                self.seq.truncate(len);
                self.ts_ms.truncate(len);
                self.lat.truncate(len);
                self.lon.truncate(len);
                self.alt_m.truncate(len);
                self.zones.truncate(len);
                self.dist_m.truncate(len);
                self.speed_mps.truncate(len);
                self.heading_deg.truncate(len);
                self.flags.truncate(len);
            }

            /// Calls `f` with every point in turn (up to the shortest column) and writes
            /// back what it leaves in the point.
            pub fn update(&mut self, mut f: impl FnMut(&mut $crate::Point)) {
                self.try_update(|p| {
                    f(p);
                    Ok::<(), ::core::convert::Infallible>(())
                })
                .unwrap_or_else(|never| match never {})
            }

            /// Like [`update`](Self::update), stopping at the first error `f` returns
            /// (the points before it keep their changes).
            pub fn try_update<E>(
                &mut self,
                mut f: impl FnMut(&mut $crate::Point) -> Result<(), E>,
            ) -> Result<(), E> {
                use $crate::point::present;
                // One zipped pass: slice iterators zip into a single indexed loop.
                let rows = self
                    .trajectory
                    .iter()
                    .zip(&self.seq)
                    .zip(&self.ts_ms)
                    .zip(self.lat.iter_mut().zip(self.lon.iter_mut()))
                    .zip(self.alt_m.iter_mut().zip(self.zones.iter_mut()))
                    .zip(self.dist_m.iter_mut().zip(self.speed_mps.iter_mut()))
                    .zip(self.heading_deg.iter_mut().zip(self.flags.iter_mut()));
                for (
                    (((((&trajectory, &seq), &ts_ms), (lat, lon)), (alt, zones)), (dist, speed)),
                    (heading, flags),
                ) in rows
                {
                    let mut p = $crate::Point {
                        trajectory,
                        seq,
                        ts_ms,
                        lat: *lat,
                        lon: *lon,
                        alt_m: present(*alt),
                        zones: Some(*zones).filter(|&z| z != $crate::NO_ZONES),
                        dist_m: present(*dist),
                        speed_mps: present(*speed),
                        heading_deg: present(*heading),
                        flags: *flags,
                    };
                    f(&mut p)?;
                    *lat = p.lat;
                    *lon = p.lon;
                    *alt = p.alt_m.unwrap_or(f64::NAN);
                    *zones = p.zones.unwrap_or($crate::NO_ZONES);
                    *dist = p.dist_m.unwrap_or(f64::NAN);
                    *speed = p.speed_mps.unwrap_or(f64::NAN);
                    *heading = p.heading_deg.unwrap_or(f64::NAN);
                    *flags = p.flags;
                }
                Ok(())
            }
        }

        impl Default for PointColumns {
            fn default() -> Self {
                Self::with_capacity(0)
            }
        }

        impl Extend<$crate::Point> for PointColumns {
            fn extend<I: IntoIterator<Item = $crate::Point>>(&mut self, points: I) {
                points.into_iter().for_each(|p| self.push(p));
            }
        }

        impl FromIterator<$crate::Point> for PointColumns {
            fn from_iter<I: IntoIterator<Item = $crate::Point>>(points: I) -> Self {
                let points = points.into_iter();
                let mut columns = Self::with_capacity(points.size_hint().0);
                columns.extend(points);
                columns
            }
        }
        impl RawLines {
            /// Empty lines with room for `lines` lines of `bytes` bytes in all.
            pub fn with_capacity(lines: usize, bytes: usize) -> Self {
                Self {
                    data: Vec::with_capacity(bytes),
                    ends: Vec::with_capacity(lines),
                    trajectory: Vec::with_capacity(lines),
                    seq: Vec::with_capacity(lines),
                }
            }

            /// Number of lines (the length of `ends`).
            pub fn len(&self) -> usize {
                self.ends.len()
            }

            /// Whether there are no lines.
            pub fn is_empty(&self) -> bool {
                self.ends.is_empty()
            }

            /// Each line's bytes (without terminator), trajectory index and `seq`, in
            /// order (up to the shortest column; ends past the data are cut to it).
            pub fn iter(&self) -> impl Iterator<Item = (&[u8], u32, u32)> + '_ {
                let mut start = 0usize;
                self.ends.iter().zip(&self.trajectory).zip(&self.seq).map(
                    move |((&end, &trajectory), &seq)| {
                        let end = (end as usize).clamp(start, self.data.len());
                        let bytes = &self.data[start..end];
                        start = end;
                        (bytes, trajectory, seq)
                    },
                )
            }

            /// Appends one line.
            pub fn push(&mut self, bytes: &[u8], trajectory: u32, seq: u32) {
                self.data.extend_from_slice(bytes);
                self.ends.push(self.data.len() as u32);
                self.trajectory.push(trajectory);
                self.seq.push(seq);
            }
        }

        impl Default for RawLines {
            fn default() -> Self {
                Self::with_capacity(0, 0)
            }
        }

        impl Batch {
            /// Number of records (lines or points) in the batch.
            pub fn len(&self) -> usize {
                match &self.records {
                    Records::Lines(raw) => raw.len(),
                    Records::Points(points) => points.len(),
                }
            }

            /// Whether the batch holds no records.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }
        }
    };
}
