//! `waystream test` as a user runs it: the project's own cases pass, a wrong expectation
//! fails with a readable diff, and `--update` rewrites expectations.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn modules() -> PathBuf {
    std::env::var_os("WAYSTREAM_MODULES")
        .map_or_else(|| workspace().join("target/modules"), PathBuf::from)
}

fn waystream_test(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_waystream"))
        .arg("test")
        .args(args)
        .arg("--modules")
        .arg(modules())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_projects_own_cases_pass() {
    let output = waystream_test(&[&workspace().join("transforms")]);
    let text = stdout(&output);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for case in [
        "parse-plt/tests/oddities",
        "geofence/tests/hole-and-edge",
        "speed/tests/steps",
        "speed/tests/state-across-batches",
    ] {
        assert!(text.contains(case), "case {case} did not run:\n{text}");
    }
    assert!(text.contains(", 0 failed"), "{text}");
}

#[test]
fn a_wrong_expectation_fails_with_a_diff_and_update_rewrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("steps");
    std::fs::create_dir(&case).unwrap();
    let original = workspace().join("transforms/speed/tests/steps");
    for file in ["case.toml", "input.ndjson", "expected.ndjson"] {
        std::fs::copy(original.join(file), case.join(file)).unwrap();
    }
    let expected = std::fs::read_to_string(case.join("expected.ndjson")).unwrap();
    assert!(expected.contains(r#""flags":["implausible_speed"]"#));
    let wrong = expected.replacen(r#""flags":["implausible_speed"]"#, r#""flags":[]"#, 1);
    std::fs::write(case.join("expected.ndjson"), &wrong).unwrap();

    let output = waystream_test(&[&case]);
    let text = stdout(&output);
    assert!(
        !output.status.success(),
        "a wrong expectation passed:\n{text}"
    );
    assert!(
        text.contains("FAILED") && text.contains("expected.ndjson (expected)"),
        "{text}"
    );
    let removed = text
        .lines()
        .find(|l| l.starts_with('-') && l.contains(r#""flags":[]"#) && l.contains(r#""seq":3"#));
    let added = text
        .lines()
        .find(|l| l.starts_with('+') && l.contains("implausible_speed"));
    assert!(
        removed.is_some() && added.is_some(),
        "no readable diff of the changed line:\n{text}"
    );

    let update = Command::new(env!("CARGO_BIN_EXE_waystream"))
        .args(["test", "--update", "--modules"])
        .arg(modules())
        .arg(&case)
        .output()
        .unwrap();
    assert!(update.status.success());
    let shown = String::from_utf8_lossy(&update.stdout);
    assert!(
        shown.contains("updated")
            && shown
                .lines()
                .any(|l| l.starts_with('+') && l.contains("implausible_speed")),
        "--update shows what it changed:\n{shown}"
    );
    assert_eq!(
        std::fs::read_to_string(case.join("expected.ndjson")).unwrap(),
        expected
    );
    assert!(waystream_test(&[&case]).status.success());
}
