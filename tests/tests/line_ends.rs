//! Odd input files through the whole chain: whatever their line ends, PLT files give the
//! same points (same `seq`, same `point_id`) as their LF twins; files with no point line
//! leave a dead letter naming them; a two-digit year is refused.

use std::path::Path;

use serde_json::Value;
use waystream::synth::{SynthConfig, generate};
use waystream_tests::*;

/// Every `.plt` file under `from`, rewritten under `to` with its line ends replaced.
fn rewrite(from: &Path, to: &Path, line_end: &str) {
    for entry in walk(from) {
        let text = std::fs::read_to_string(&entry).unwrap();
        let target = to.join(entry.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        let mut out = String::new();
        for (i, line) in lines.iter().enumerate() {
            out.push_str(line);
            if i + 1 < lines.len() {
                // `mixed` cycles through LF, CR, CRLF and CR CR LF; a CR alone only before a
                // line that is not empty (a CR and then an empty line's LF read as CRLF,
                // which is what they are in every file but this made-up one).
                let next_empty = lines[i + 1].is_empty();
                out.push_str(match line_end {
                    "mixed" if next_empty => "\n",
                    "mixed" => ["\n", "\r", "\r\n", "\r\r\n"][i % 4],
                    other => other,
                });
            }
        }
        std::fs::write(target, out).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The documents and dead letters of the standard chain over `input`.
fn run_chain(input: &Path, out: &Path) -> (Vec<Value>, Vec<Value>) {
    let summary = run(&pipeline_config(
        input,
        out,
        &Stage::standard_chain(),
        "batch_size = 64",
    ));
    assert!(summary.balanced(), "{summary}");
    (
        read_ndjson(&out.join("points.ndjson")),
        read_ndjson(&out.join("dead-letter.ndjson")),
    )
}

#[test]
fn every_kind_of_line_end_gives_the_points_of_the_lf_twin() {
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("crlf");
    generate(&SynthConfig {
        out: synth.clone(),
        users: 2,
        trajectories: 2,
        points: 300,
        corrupt: 0.02,
        seed: 5,
    })
    .unwrap();
    rewrite(&synth, &dir.path().join("lf"), "\n");
    let (points, letters) = run_chain(&dir.path().join("lf"), &dir.path().join("out-lf"));
    assert!(points.len() > 500 && !letters.is_empty());
    for variant in ["\r", "\r\r\n", "mixed", "\r\n"] {
        let input = dir.path().join(format!("in-{}", variant.len()));
        rewrite(&synth, &input, variant);
        let (got_points, got_letters) = run_chain(&input, &dir.path().join("out"));
        assert_eq!(got_points.len(), points.len(), "{variant:?}: point count");
        if let Some(i) = (0..points.len()).find(|&i| got_points[i] != points[i]) {
            panic!(
                "{variant:?}: point {i} differs: {} vs {}",
                got_points[i], points[i]
            );
        }
        assert_eq!(
            got_letters.len(),
            letters.len(),
            "{variant:?}: dead letters differ"
        );
        for (got, want) in got_letters.iter().zip(&letters) {
            for key in ["seq", "trajectory", "cause", "line"] {
                assert_eq!(got[key], want[key], "{variant:?}: {key}");
            }
        }
    }
}

#[test]
fn files_without_points_leave_a_dead_letter_and_short_years_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        plt_line(39.9, 116.4, 100.0, 0),
        "39.9,116.4,0,100,39744.0,08-10-23,02:00:01".to_string(),
        "39.9,116.4,0,100,39744.0,0000-10-23,02:00:02".to_string(),
    ];
    write_plt(dir.path(), "001", "good", &lines);
    let trajectory = dir.path().join("Data/001/Trajectory");
    std::fs::write(trajectory.join("header-only.plt"), PLT_HEADER).unwrap();
    std::fs::write(
        trajectory.join("cut.plt"),
        "Geolife trajectory\r\nWGS 84\r\n",
    )
    .unwrap();
    let (points, letters) = run_chain(dir.path(), &dir.path().join("out"));
    assert_eq!(points.len(), 1);
    let causes: Vec<(&str, &str, &str)> = letters
        .iter()
        .map(|l| {
            (
                l["module"].as_str().unwrap(),
                l["trajectory"].as_str().unwrap(),
                l["cause"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(causes.len(), 4, "{causes:?}");
    assert!(causes.contains(&(
        "source:files",
        "cut",
        "the file ends inside its header (2 of 6 lines): it holds no point"
    )));
    assert!(causes.contains(&(
        "source:files",
        "header-only",
        "the file has its header and no point line after it"
    )));
    assert!(causes.iter().any(|(m, t, c)| *m == "parse-plt"
        && *t == "good"
        && c.contains("the year must have four digits")));
    assert!(
        causes.iter().any(|(m, t, c)| *m == "parse-plt"
            && *t == "good"
            && c.contains("year 0000 is no year"))
    );
}
