//! The files source's follow mode, through `waystream run` as a user starts it: files
//! arriving while it runs (written at once, copied slowly in pieces, renamed into place)
//! are read once each and whole; SIGTERM stops it after a flush; a restart reads nothing
//! again and picks up a file added while it was stopped; a file cut off by SIGKILL is read
//! again into the same documents.

use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use waystream_tests::aws::waystream_binary;
use waystream_tests::*;

/// `lines` point lines of a trajectory (all valid), as a PLT file's text.
fn plt_text(lines: u32, start: u32) -> String {
    let mut text = PLT_HEADER.to_string();
    for i in 0..lines {
        text += &plt_line(39.9 + f64::from(i) * 1e-4, 116.3, 100.0, start + i);
        text += "\r\n";
    }
    text
}

struct Folder {
    dir: tempfile::TempDir,
    /// (trajectory, seq) of every point written into complete files.
    expected: BTreeSet<(String, u64)>,
}

impl Folder {
    fn input(&self) -> PathBuf {
        self.dir.path().join("in/Data/007/Trajectory")
    }

    fn expect(&mut self, trajectory: &str, lines: u32) {
        for seq in 0..u64::from(lines) {
            self.expected.insert((trajectory.to_string(), seq));
        }
    }

    /// Writes `<trajectory>.plt` at once.
    fn write(&mut self, trajectory: &str, lines: u32) {
        std::fs::write(
            self.input().join(format!("{trajectory}.plt")),
            plt_text(lines, 0),
        )
        .unwrap();
        self.expect(trajectory, lines);
    }

    /// Writes `<trajectory>.plt` in three pieces with pauses longer than the source's
    /// quiet time between them, through one open file (a slow copy).
    fn copy_slowly(&mut self, trajectory: &str, lines: u32) {
        let text = plt_text(lines, 0);
        let mut file =
            std::fs::File::create(self.input().join(format!("{trajectory}.plt"))).unwrap();
        let third = text.len() / 3;
        for piece in [&text[..third], &text[third..2 * third], &text[2 * third..]] {
            file.write_all(piece.as_bytes()).unwrap();
            file.flush().unwrap();
            std::thread::sleep(Duration::from_millis(700));
        }
        drop(file);
        self.expect(trajectory, lines);
    }

    /// Writes `<trajectory>.plt.part` and renames it into place.
    fn rename_in(&mut self, trajectory: &str, lines: u32) {
        let part = self.input().join(format!("{trajectory}.plt.part"));
        std::fs::write(&part, plt_text(lines, 0)).unwrap();
        std::fs::rename(&part, self.input().join(format!("{trajectory}.plt"))).unwrap();
        self.expect(trajectory, lines);
    }

    fn config(&self) -> PathBuf {
        let path = self.dir.path().join("pipeline.toml");
        let out = self.dir.path().join("out");
        let text = format!(
            "batch_size = 50\n[source]\ntype = \"files\"\npath = {:?}\nfollow = true\ncheckpoint = {:?}\n{}\
             [sink]\ntype = \"ndjson\"\npath = {:?}\nappend = true\n\
             [dead_letter]\ntype = \"ndjson\"\npath = {:?}\nappend = true\n",
            self.dir.path().join("in").display().to_string(),
            out.join("read-files").display().to_string(),
            chain_text(&Stage::standard_chain()),
            out.join("points.ndjson").display().to_string(),
            out.join("dead-letter.ndjson").display().to_string(),
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    fn start(&self) -> Child {
        Command::new(waystream_binary())
            .args(["run", "--quiet", "--no-reload", "--config"])
            .arg(self.config())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    }

    /// (trajectory, seq) of every output document, in order.
    fn output(&self) -> Vec<(String, u64)> {
        let path = self.dir.path().join("out/points.ndjson");
        if !path.exists() {
            return Vec::new();
        }
        read_ndjson(&path)
            .iter()
            .map(|p| {
                (
                    p["trajectory"].as_str().unwrap().to_string(),
                    p["seq"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    /// Waits until the output holds every expected point (while `host` runs).
    fn wait_for_all(&self, host: &mut Child) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = host.try_wait().unwrap() {
                panic!("waystream run ended early: {status}");
            }
            let have: HashSet<_> = self.output().into_iter().collect();
            if self.expected.iter().all(|p| have.contains(p)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "points missing after 60 s: have {}, expected {}",
                have.len(),
                self.expected.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The output is every expected point exactly once.
    fn check_exactly_once(&self) {
        let output = self.output();
        let unique: BTreeSet<_> = output.iter().cloned().collect();
        assert_eq!(unique.len(), output.len(), "points read twice");
        self.check_all_present();
    }

    /// The output holds every expected point and no other (copies allowed).
    fn check_all_present(&self) {
        let unique: BTreeSet<_> = self.output().into_iter().collect();
        assert_eq!(unique, self.expected);
    }
}

fn stop(mut child: Child) {
    // SAFETY: kill(2) on a child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "waystream run ended with {status}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waystream run did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn follow_mode_reads_each_arriving_file_once_and_whole_across_restarts() {
    let mut folder = Folder {
        dir: tempfile::tempdir().unwrap(),
        expected: BTreeSet::new(),
    };
    std::fs::create_dir_all(folder.input()).unwrap();
    folder.write("there-at-start", 120);

    let mut host = folder.start();
    folder.wait_for_all(&mut host);
    folder.write("written", 80);
    folder.copy_slowly("copied-slowly", 300);
    folder.rename_in("renamed", 90);
    // Not a .plt file: never read.
    std::fs::write(folder.input().join("notes.txt"), "not a trajectory").unwrap();
    folder.wait_for_all(&mut host);
    stop(host);
    folder.check_exactly_once();
    let checkpoint = std::fs::read_to_string(folder.dir.path().join("out/read-files")).unwrap();
    assert_eq!(checkpoint.lines().count(), 4, "{checkpoint}");

    // Stopped: a file arrives. The restart reads it and nothing else again.
    folder.write("while-stopped", 60);
    let mut host = folder.start();
    folder.wait_for_all(&mut host);
    // Time for a wrong re-read of the old files to show.
    std::thread::sleep(Duration::from_millis(1500));
    stop(host);
    folder.check_exactly_once();
}

/// Follow mode keeps no state file, and needs none: a file is one trajectory, read whole,
/// so a file cut off by a crash is read again from its first line with fresh state, as it
/// was the first time. A host killed (SIGKILL) in the middle of a long file, restarted,
/// gives for every point the document a run without the kill gives, byte for byte.
#[test]
fn a_file_cut_off_by_a_kill_is_read_again_into_the_same_documents() {
    let mut folder = Folder {
        dir: tempfile::tempdir().unwrap(),
        expected: BTreeSet::new(),
    };
    std::fs::create_dir_all(folder.input()).unwrap();
    folder.write("before", 200);
    let mut host = folder.start();
    folder.wait_for_all(&mut host);
    let points = folder.dir.path().join("out/points.ndjson");
    let size = std::fs::metadata(&points).unwrap().len();

    // Killed as soon as the long file's first documents are out: far from its end.
    folder.write("long", 20_000);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&points).unwrap().len() == size {
        assert!(Instant::now() < deadline, "the long file was not read");
        std::thread::sleep(Duration::from_millis(2));
    }
    host.kill().unwrap();
    host.wait().unwrap();
    let read = std::fs::read_to_string(folder.dir.path().join("out/read-files")).unwrap();
    assert!(
        !read.contains("long"),
        "the kill came after the long file was read whole; nothing was cut off"
    );

    let mut host = folder.start();
    folder.wait_for_all(&mut host);
    stop(host);

    let reference = folder.dir.path().join("reference");
    run(&pipeline_config(
        &folder.dir.path().join("in"),
        &reference,
        &Stage::standard_chain(),
        "batch_size = 50",
    ));
    let by_point = |path: &std::path::Path| -> Vec<((String, u64), String)> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|line| {
                let document: serde_json::Value = serde_json::from_str(line).unwrap();
                let point = (
                    document["trajectory"].as_str().unwrap().to_string(),
                    document["seq"].as_u64().unwrap(),
                );
                (point, line.to_string())
            })
            .collect()
    };
    let expected: std::collections::HashMap<_, _> = by_point(&reference.join("points.ndjson"))
        .into_iter()
        .collect();
    assert_eq!(expected.len(), folder.expected.len());
    let got = by_point(&points);
    let again = got.len() - expected.len();
    assert!(
        again > 0,
        "the cut-off part of the long file was read again"
    );
    let differing: Vec<_> = got
        .iter()
        .filter(|(point, line)| expected.get(point) != Some(line))
        .collect();
    assert!(
        differing.is_empty(),
        "{} of {} documents differ from the run without a kill, first: {:?}",
        differing.len(),
        got.len(),
        differing.first()
    );
    folder.check_all_present();
}
