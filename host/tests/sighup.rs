//! SIGHUP reloads the pipeline config of a running `waystream run` (and does not kill it,
//! which is what SIGHUP does to a process that does not handle it).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

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

#[test]
fn sighup_reloads_the_config_of_a_running_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let waystream = env!("CARGO_BIN_EXE_waystream");
    let synth = Command::new(waystream)
        .args([
            "synth",
            "--users",
            "20",
            "--trajectories",
            "20",
            "--points",
            "1500",
            "--out",
        ])
        .arg(dir.path().join("plt"))
        .output()
        .unwrap();
    assert!(synth.status.success());
    let config = dir.path().join("pipeline.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\ntype = \"files\"\npath = \"plt\"\n\
             [[transforms]]\nname = \"parse-plt\"\npath = {:?}\n\
             [[transforms]]\nname = \"speed\"\npath = {:?}\n\
             [sink]\ntype = \"ndjson\"\npath = \"out/points.ndjson\"\n\
             [dead_letter]\ntype = \"ndjson\"\npath = \"out/dead-letter.ndjson\"\n",
            module("parse-plt"),
            module("speed"),
        ),
    )
    .unwrap();
    let summary = dir.path().join("summary.json");
    let mut child = Command::new(waystream)
        .args(["run", "--quiet", "--config"])
        .arg(&config)
        .arg("--summary-json")
        .arg(&summary)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
    // Both modules loaded: the reloader (and its SIGHUP handler) starts right after.
    let mut loaded = 0;
    while loaded < 2 {
        let line = log
            .next()
            .expect("the run ended before loading its modules")
            .unwrap();
        loaded += usize::from(line.contains("module loaded"));
    }
    std::thread::sleep(Duration::from_millis(200));
    let kill = Command::new("kill")
        .arg("-HUP")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(kill.success());
    let rest: Vec<String> = log.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the run did not survive SIGHUP: {status}\n{}",
        rest.join("\n")
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(
        summary["config_reloads"],
        1,
        "the reload in the summary:\n{}",
        rest.join("\n")
    );
}
