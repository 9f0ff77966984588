//! Hostile guests against a `waystream run` process: what only a whole process shows (how
//! fast it stops on SIGTERM, what its log looks like). The in-process attacks, with their
//! memory figures, are in `tests/tests/attacks.rs`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use waystream_contract::plt::HEADER;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn module(name: &str) -> PathBuf {
    let dir = std::env::var_os("WAYSTREAM_MODULES")
        .map_or_else(|| workspace().join("target/modules"), PathBuf::from);
    dir.join(format!("{name}.wasm"))
}

const LINES: u32 = 50;

/// `files` trajectories of [`LINES`] points named `bad-<i>` (the hostile guest misbehaves
/// on them), and a pipeline config parse-plt → hostile(`behaviour`) with one file per
/// batch and a one-second time limit. Returns the config's path.
fn fixture(dir: &Path, files: u32, behaviour: &str) -> PathBuf {
    let plt = dir.join("plt/Data/001/Trajectory");
    std::fs::create_dir_all(&plt).unwrap();
    for i in 0..files {
        let mut text = HEADER.to_string();
        for s in 0..LINES {
            text += &format!(
                "39.9,116.4,0,100,39744.0,2008-10-23,02:{:02}:{:02}\r\n",
                s / 60,
                s % 60
            );
        }
        std::fs::write(plt.join(format!("bad-{i:04}.plt")), text).unwrap();
    }
    let config = dir.join("pipeline.toml");
    std::fs::write(
        &config,
        format!(
            "batch_size = {LINES}\n[limits]\ncall_timeout_ms = 1000\nmemory_mib = 32\n\
             [source]\ntype = \"files\"\npath = \"plt\"\n\
             [[transforms]]\nname = \"parse-plt\"\npath = {:?}\n\
             [[transforms]]\nname = \"hostile\"\npath = {:?}\nconfig = {{ behaviour = {behaviour:?} }}\n\
             [sink]\ntype = \"ndjson\"\npath = \"out/points.ndjson\"\n\
             [dead_letter]\ntype = \"ndjson\"\npath = \"out/dead-letter.ndjson\"\n",
            module("parse-plt"),
            module("hostile"),
        ),
    )
    .unwrap();
    config
}

fn start(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_waystream"))
        .args(["run", "--quiet", "--no-reload", "--config"])
        .arg(config)
        .arg("--summary-json")
        .arg(config.with_file_name("summary.json"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn summary(config: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(config.with_file_name("summary.json")).unwrap())
        .unwrap()
}

#[test]
fn sigterm_ends_the_run_within_the_time_limit_and_a_second() {
    let dir = tempfile::tempdir().unwrap();
    // 200 batches of a guest that loops until the one-second limit: minutes of work.
    let config = fixture(dir.path(), 200, "loop");
    let mut child = start(&config);
    std::thread::sleep(Duration::from_millis(2500));
    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "the run ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = signalled.elapsed();
    assert!(
        took <= Duration::from_millis(2000),
        "SIGTERM took {took:?} to end the run (limit 1 s + 1 s)"
    );
    assert!(status.success(), "{status}");
    let summary = summary(&config);
    assert_eq!(summary["balanced"], true, "{summary}");
    assert!(summary["dead_letters"].as_u64().unwrap() >= u64::from(LINES));
    // The summary's times: loading the modules, the run, and the whole process, which
    // holds both (the run went on for the 2.5 s before the signal).
    let seconds = |key: &str| {
        summary[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key}: {summary}"))
    };
    let (load, wall, process) = (
        seconds("load_s"),
        seconds("wall_s"),
        seconds("process_wall_s"),
    );
    assert!(load > 0.0 && wall >= 2.0, "{summary}");
    assert!(process >= load + wall, "{summary}");
}

#[test]
fn a_sleeping_guest_cannot_stretch_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    // Each of 50 batches would sleep 600 s if the guest could sleep.
    let config = fixture(dir.path(), 50, "sleep");
    let started = Instant::now();
    let mut child = start(&config);
    let status = child.wait().unwrap();
    assert!(status.success());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let summary = summary(&config);
    assert_eq!(summary["dead_letters"], 50 * LINES, "{summary}");
    assert_eq!(summary["modules"][1]["failed_batches"], 50, "{summary}");
    let letters = std::fs::read_to_string(dir.path().join("out/dead-letter.ndjson")).unwrap();
    let first: serde_json::Value = serde_json::from_str(letters.lines().next().unwrap()).unwrap();
    assert!(
        first["cause"]
            .as_str()
            .unwrap()
            .starts_with("blocking call"),
        "{first}"
    );
}

#[test]
fn guest_log_lines_cannot_forge_host_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let config = fixture(dir.path(), 2, "log-newline");
    let mut child = start(&config);
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(child.wait().unwrap().success());
    // The guest wrote "first line\nERROR waystream: all good\r\nINFO forged\x1b[31m red".
    let guest_lines: Vec<&str> = log.lines().filter(|l| l.contains("first line")).collect();
    assert_eq!(guest_lines.len(), 2, "one line per batch:\n{log}");
    for line in guest_lines {
        assert!(
            line.contains(r"first line\nERROR waystream: all good\r\nINFO forged\u{1b}[31m red"),
            "{line}"
        );
    }
    for line in log.lines() {
        let start = line.trim_start();
        assert!(
            !start.starts_with("ERROR waystream: all good") && !start.starts_with("INFO forged"),
            "a forged line: {line}"
        );
    }
}
