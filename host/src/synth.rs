//! `waystream synth`: deterministic synthetic trajectories in the Geolife PLT layout.
//!
//! The demo and the tests use these instead of Geolife files (whose licence forbids
//! redistribution). The same seed always writes the same bytes. Trajectories walk, cycle or
//! drive around Beijing at realistic speeds with a wandering heading, and carry the oddities
//! of real files: CRLF line ends, the six header lines, `-777` altitudes, repeated
//! timestamps (1-second resolution), and now and then a corrupt line (truncated, a field
//! that is not a number, an out-of-range latitude, binary garbage, an empty line).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What to generate.
#[derive(Debug, Clone, clap::Args)]
pub struct SynthConfig {
    /// Output folder; files go to `<out>/Data/NNN/Trajectory/<start>.plt`.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of users.
    #[arg(long, default_value_t = 5)]
    pub users: u32,
    /// Trajectories per user.
    #[arg(long, default_value_t = 4)]
    pub trajectories: u32,
    /// Points per trajectory (each trajectory gets between half and all of this).
    #[arg(long, default_value_t = 2000)]
    pub points: u32,
    /// Fraction of corrupt lines.
    #[arg(long, default_value_t = 0.002)]
    pub corrupt: f64,
    /// Random seed: the same seed writes the same files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SynthReport {
    /// PLT files written.
    pub files: u64,
    /// Point lines (header lines excluded), corrupt ones included.
    pub point_lines: u64,
    /// Corrupt lines among them.
    pub corrupt_lines: u64,
}

#[derive(Clone, Copy)]
enum Mode {
    Walk,
    Cycle,
    Drive,
}

impl Mode {
    /// (typical speed m/s, seconds between fixes).
    fn profile(self) -> (f64, u32) {
        match self {
            Mode::Walk => (1.4, 5),
            Mode::Cycle => (4.5, 3),
            Mode::Drive => (11.0, 2),
        }
    }
}

/// Days from 1899-12-30 (the PLT day-count epoch) to 1970-01-01.
const PLT_EPOCH_OFFSET_DAYS: f64 = 25_569.0;
const METRES_PER_DEGREE: f64 = 111_195.0;

/// Writes the trajectories and reports what it wrote.
pub fn generate(config: &SynthConfig) -> Result<SynthReport> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut report = SynthReport::default();
    let mut text = String::new();
    for user in 0..config.users {
        let dir = config
            .out
            .join("Data")
            .join(format!("{user:03}"))
            .join("Trajectory");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // 2008-10-01 plus a few days per user.
        let mut start_s: i64 = 1_222_819_200 + i64::from(user) * 86_400 * 3;
        for _ in 0..config.trajectories {
            start_s += rng.random_range(3_600..86_400);
            let points = rng.random_range(config.points.div_ceil(2)..=config.points.max(1));
            text.clear();
            let corrupt = write_trajectory(&mut rng, &mut text, start_s, points, config.corrupt);
            let path = dir.join(format!("{}.plt", file_stem(start_s)));
            std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
            report.files += 1;
            report.point_lines += u64::from(points);
            report.corrupt_lines += corrupt;
            start_s += i64::from(points) * 5;
        }
    }
    Ok(report)
}

/// One PLT file's text; returns the number of corrupt lines.
fn write_trajectory(
    rng: &mut ChaCha8Rng,
    out: &mut String,
    start_s: i64,
    points: u32,
    corrupt: f64,
) -> u64 {
    let mode = [Mode::Walk, Mode::Cycle, Mode::Drive][rng.random_range(0..3)];
    let (speed, interval) = mode.profile();
    let mut lat = 39.9 + rng.random_range(-0.12..0.12);
    let mut lon = 116.4 + rng.random_range(-0.15..0.15);
    let mut heading: f64 = rng.random_range(0.0..360.0);
    let mut alt_ft: f64 = rng.random_range(80.0..400.0);
    let mut t = start_s;
    let mut corrupt_lines = 0;
    out.push_str(waystream_contract::plt::HEADER);
    for _ in 0..points {
        if rng.random_bool(corrupt.clamp(0.0, 1.0)) {
            corrupt_lines += 1;
            write_corrupt_line(rng, out, lat, lon, t);
            continue;
        }
        let altitude = if rng.random_bool(0.02) {
            -777.0
        } else {
            alt_ft
        };
        let days = PLT_EPOCH_OFFSET_DAYS + t as f64 / 86_400.0;
        let _ = write!(
            out,
            "{lat:.6},{lon:.6},0,{altitude:.0},{days:.10},{}\r\n",
            date_time(t)
        );
        // Move on: a wandering heading, speed around the mode's typical one; now and then
        // a repeated timestamp (dt = 0), as Geolife's 1-second resolution produces.
        let dt = if rng.random_bool(0.03) {
            0
        } else {
            rng.random_range(1..=interval * 2)
        };
        heading = (heading + rng.random_range(-20.0..20.0)).rem_euclid(360.0);
        let step = speed * rng.random_range(0.5..1.5) * f64::from(dt.max(1));
        lat += step * heading.to_radians().cos() / METRES_PER_DEGREE;
        lon += step * heading.to_radians().sin() / (METRES_PER_DEGREE * lat.to_radians().cos());
        alt_ft = (alt_ft + rng.random_range(-3.0..3.0)).clamp(0.0, 1500.0);
        t += i64::from(dt);
    }
    corrupt_lines
}

fn write_corrupt_line(rng: &mut ChaCha8Rng, out: &mut String, lat: f64, lon: f64, t: i64) {
    let good = format!(
        "{lat:.6},{lon:.6},0,100,{:.10},{}",
        PLT_EPOCH_OFFSET_DAYS + t as f64 / 86_400.0,
        date_time(t)
    );
    match rng.random_range(0..5) {
        0 => out.push_str(&good[..good.len() / 2]),
        1 => out.push_str(&good.replacen(',', ",x", 1)),
        2 => out.push_str(&good.replacen(&format!("{lat:.6}"), "400.170000", 1)),
        3 => out.push_str("\u{1}\u{2}PK\u{3}\u{4}"),
        _ => {}
    }
    out.push_str("\r\n");
}

fn date_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d,%H:%M:%S").to_string())
        .unwrap_or_default()
}

fn file_stem(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y%m%d%H%M%S").to_string())
        .unwrap_or_default()
}

/// Counts the point lines (lines after the six header lines) of the PLT files under
/// `root`: what a run on it must account for.
pub fn count_point_lines(root: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry?;
        if entry.path().extension().is_some_and(|e| e == "plt") {
            let bytes = std::fs::read(entry.path())?;
            let lines = bytes.split(|&b| b == b'\n').count() - usize::from(bytes.ends_with(b"\n"));
            total += lines.saturating_sub(6) as u64;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_and_counts_add_up() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let config = |out: &Path| SynthConfig {
            out: out.into(),
            users: 2,
            trajectories: 2,
            points: 300,
            corrupt: 0.02,
            seed: 7,
        };
        let report = generate(&config(a.path())).unwrap();
        generate(&config(b.path())).unwrap();
        assert_eq!(report.files, 4);
        assert!(report.corrupt_lines > 0, "2% of ~900 lines");
        assert_eq!(count_point_lines(a.path()).unwrap(), report.point_lines);
        for entry in walkdir::WalkDir::new(a.path())
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
        {
            let other = b.path().join(entry.path().strip_prefix(a.path()).unwrap());
            assert_eq!(
                std::fs::read(entry.path()).unwrap(),
                std::fs::read(other).unwrap()
            );
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            assert!(text.starts_with("Geolife trajectory\r\n"));
        }
    }
}
