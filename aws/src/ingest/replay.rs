//! `waystream replay`: PLT trajectories from a folder or an S3 prefix into Kinesis.
//!
//! As fast as possible, or paced: with `speed = N`, a point is put N times faster than
//! it was recorded, relative to the earliest point of the whole set (so trajectories
//! that overlapped in time overlap in the replay). Points are put when they fall due,
//! everything due at one moment in one round of calls; a line whose time does not parse
//! goes with the line before it (and the pipeline dead-letters it).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use super::objects::{Trajectory, point_lines, trajectory_of_key};
use super::producer::{Producer, PutReport, Run};

/// Where the trajectories come from.
#[derive(Debug, Clone)]
pub enum ReplayFrom {
    /// `*.plt` and `*.plt.gz` files under a folder.
    Folder(PathBuf),
    /// Objects under `s3://bucket/prefix`.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix the objects are under.
        prefix: String,
    },
}

impl ReplayFrom {
    /// `s3://bucket/prefix` or a local path.
    pub fn parse(text: &str) -> Self {
        match text.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                ReplayFrom::S3 {
                    bucket: bucket.into(),
                    prefix: prefix.into(),
                }
            }
            None => ReplayFrom::Folder(text.into()),
        }
    }
}

/// How to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// N × real time; none: as fast as possible.
    pub speed: Option<f64>,
    /// Draw a progress bar.
    pub progress: bool,
}

/// Trajectories put per round when not paced (bounds the memory of aggregates).
const FAST_ROUND: usize = 200;

/// Reads every trajectory, then puts its lines as `options` say.
pub async fn replay(
    from: &ReplayFrom,
    options: &ReplayOptions,
    s3: Option<&aws_sdk_s3::Client>,
    producer: &Producer,
) -> Result<PutReport> {
    let trajectories = match from {
        ReplayFrom::Folder(dir) => read_folder(dir)?,
        ReplayFrom::S3 { bucket, prefix } => {
            let s3 = s3.context("replaying from S3 needs an S3 client")?;
            read_prefix(s3, bucket, prefix).await?
        }
    };
    let total: usize = trajectories.iter().map(|t| t.lines.len()).sum();
    let progress = if options.progress {
        ProgressBar::new(total as u64).with_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} points ({eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    } else {
        ProgressBar::hidden()
    };
    let mut report = PutReport::default();
    match options.speed {
        None => {
            for round in trajectories.chunks(FAST_ROUND) {
                let runs: Vec<Run> = round.iter().map(|t| run(t, 0, t.lines.len())).collect();
                report.add(&producer.put(&runs).await?);
                progress.set_position(report.lines);
            }
        }
        Some(speed) => paced(&trajectories, speed, producer, &progress, &mut report).await?,
    }
    progress.finish_and_clear();
    Ok(report)
}

fn run(t: &Trajectory, from: usize, to: usize) -> Run<'_> {
    Run {
        user: &t.user,
        trajectory: &t.id,
        first_seq: from as u32,
        lines: &t.lines[from..to],
    }
}

/// Puts each line when it falls due at `speed` × real time.
async fn paced(
    trajectories: &[Trajectory],
    speed: f64,
    producer: &Producer,
    progress: &ProgressBar,
    report: &mut PutReport,
) -> Result<()> {
    anyhow::ensure!(speed > 0.0, "replay speed must be positive, not {speed}");
    let due: Vec<Vec<i64>> = trajectories.iter().map(|t| due_times(&t.lines)).collect();
    // Untimed lines do not set the start: they are due before it.
    let timed = due.iter().flatten().filter(|&&d| d != UNTIMED);
    let Some(t0) = timed
        .min()
        .copied()
        .or(due.iter().flatten().next().copied())
    else {
        return Ok(());
    };
    let started = tokio::time::Instant::now();
    let mut next = vec![0usize; trajectories.len()];
    loop {
        let now_ms = t0 + (started.elapsed().as_secs_f64() * 1000.0 * speed) as i64;
        let mut runs = Vec::new();
        for (i, t) in trajectories.iter().enumerate() {
            let from = next[i];
            let to = from + due[i][from..].iter().take_while(|&&d| d <= now_ms).count();
            if to > from {
                runs.push(run(t, from, to));
                next[i] = to;
            }
        }
        if !runs.is_empty() {
            report.add(&producer.put(&runs).await?);
            progress.set_position(report.lines);
        }
        let upcoming = (0..trajectories.len())
            .filter_map(|i| due[i].get(next[i]))
            .min();
        let Some(&upcoming) = upcoming else {
            return Ok(());
        };
        let wait_ms = (upcoming - t0) as f64 / speed;
        tokio::time::sleep_until(started + Duration::from_secs_f64(wait_ms.max(0.0) / 1000.0))
            .await;
    }
}

/// Each line's time in ms since the epoch (a line that does not parse takes the time of
/// the line before it, or of the first that parses when none before it does), never
/// decreasing. A trajectory with no readable time at all is due at once ([`UNTIMED`]).
fn due_times(lines: &[Vec<u8>]) -> Vec<i64> {
    let mut last = lines.iter().find_map(|line| line_time(line));
    if last.is_none() {
        return vec![UNTIMED; lines.len()];
    }
    lines
        .iter()
        .map(|line| {
            let parsed = line_time(line).filter(|&t| last.is_none_or(|l| t >= l));
            let time = parsed.or(last).unwrap_or(0);
            last = Some(time);
            time
        })
        .collect()
}

/// The due time of a trajectory none of whose lines has a readable time: at once.
const UNTIMED: i64 = i64::MIN;

/// The time of a PLT line from its date and time fields (`…,2008-10-23,02:53:04`).
fn line_time(line: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(line).ok()?;
    let mut fields = text.rsplitn(3, ',');
    let (time, date) = (fields.next()?, fields.next()?);
    let parsed =
        chrono::NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M:%S")
            .ok()?;
    Some(parsed.and_utc().timestamp_millis())
}

fn read_folder(dir: &Path) -> Result<Vec<Trajectory>> {
    let mut trajectories = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy();
        if !entry.file_type().is_file() || !(name.ends_with(".plt") || name.ends_with(".plt.gz")) {
            continue;
        }
        let path = entry.path();
        // The Geolife layout gives user and trajectory; elsewhere the folder is the user.
        let (user, id) = trajectory_of_key(&path.to_string_lossy()).unwrap_or_else(|_| {
            let folder = path.parent().and_then(Path::file_name).unwrap_or_default();
            let stem = name.trim_end_matches(".gz").trim_end_matches(".plt");
            (folder.to_string_lossy().into_owned(), stem.to_string())
        });
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        match point_lines(&bytes) {
            Ok(lines) => trajectories.push(Trajectory { user, id, lines }),
            Err(e) => skipped(&path.display().to_string(), &e),
        }
    }
    Ok(trajectories)
}

async fn read_prefix(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<Trajectory>> {
    let mut trajectories = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.with_context(|| format!("listing s3://{bucket}/{prefix}"))?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            let Ok((user, id)) = trajectory_of_key(key) else {
                tracing::warn!(%key, "skipped: not a PLT file in the Geolife layout");
                continue;
            };
            let body = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await?
                .body
                .collect()
                .await?;
            match point_lines(&body.into_bytes()) {
                Ok(lines) => trajectories.push(Trajectory { user, id, lines }),
                Err(e) => skipped(&format!("s3://{bucket}/{key}"), &e),
            }
        }
    }
    Ok(trajectories)
}

/// A file with no point lines to replay: said in the log, never silently.
fn skipped(file: &str, why: &anyhow::Error) {
    tracing::warn!(%file, "skipped: {why:#}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_follow_the_points_and_tolerate_bad_lines() {
        let lines: Vec<Vec<u8>> = [
            "39.9,116.3,0,100,39744.1,2008-10-23,02:53:04",
            "garbage",
            "39.9,116.3,0,100,39744.1,2008-10-23,02:53:34",
            "39.9,116.3,0,100,39744.1,2008-10-23,02:53:30",
        ]
        .iter()
        .map(|l| l.as_bytes().to_vec())
        .collect();
        let due = due_times(&lines);
        assert_eq!(due[1], due[0], "a bad line goes with the one before");
        assert_eq!(due[2] - due[0], 30_000);
        assert_eq!(due[3], due[2], "time never runs backwards");
    }

    #[test]
    fn a_first_line_without_a_time_is_due_with_the_first_that_has_one() {
        let lines: Vec<Vec<u8>> = [
            "39.9,116.3,0,100,39744.1,not-a-date,02:53:04",
            "39.9,116.3,0,100,39744.1,2008-10-23,02:53:04",
            "39.9,116.3,0,100,39744.1,2008-10-23,02:53:10",
        ]
        .iter()
        .map(|l| l.as_bytes().to_vec())
        .collect();
        let due = due_times(&lines);
        assert_eq!(due[0], due[1], "not 1970: the replay would wait decades");
        assert_eq!(due[2] - due[1], 6_000);
        let untimed = due_times(&[b"garbage".to_vec(), b"more garbage".to_vec()]);
        assert_eq!(untimed, [UNTIMED, UNTIMED]);
    }

    #[test]
    fn sources_parse() {
        assert!(
            matches!(ReplayFrom::parse("s3://b/p/q"), ReplayFrom::S3 { bucket, prefix } if bucket == "b" && prefix == "p/q")
        );
        assert!(
            matches!(ReplayFrom::parse("s3://b"), ReplayFrom::S3 { prefix, .. } if prefix.is_empty())
        );
        assert!(matches!(
            ReplayFrom::parse("demo/plt"),
            ReplayFrom::Folder(_)
        ));
    }
}
