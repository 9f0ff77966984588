//! The live page in a real browser against the real host (`cargo xtask test` runs it):
//! `waystream run --follow --http` on synthetic trajectories, then
//! `tests/browser/live_page.mjs` in Debian's Chromium checks that the page draws points and
//! the chain, and, after the speed module is swapped, that it shows generation 2. The
//! screenshot goes to `target/live-page.png`.
//!
//! Set-up it does itself: Chromium (`apt-get install chromium`, as root, when
//! `/usr/bin/chromium` is missing and `$WAYSTREAM_CHROMIUM` is unset) and playwright-core
//! (`npm ci` in `tests/browser`, from its lock file).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::run;

pub fn check(root: &Path) -> Result<()> {
    ensure_chromium()?;
    run(Command::new("npm")
        .args(["ci", "--silent", "--no-audit", "--no-fund", "--prefix"])
        .arg(root.join("tests/browser")))?;
    let work = root.join("target/browser-check");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(work.join("modules"))?;
    let modules = root.join("target/modules");
    for name in ["parse-plt", "geofence", "speed"] {
        std::fs::copy(
            modules.join(format!("{name}.wasm")),
            work.join(format!("modules/{name}.wasm")),
        )?;
    }
    let waystream = root.join("target/debug/waystream");
    run(Command::new(&waystream)
        .args([
            "synth",
            "--users",
            "4",
            "--trajectories",
            "3",
            "--points",
            "1500",
            "--out",
        ])
        .arg(work.join("plt")))?;
    let config = work.join("pipeline.toml");
    std::fs::write(&config, config_text(root))?;
    let address = free_address()?;
    let host = Command::new(&waystream)
        .args(["run", "--quiet", "--follow", "--http", &address, "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .spawn()
        .context("starting waystream run")?;
    let mut host = Host(host);
    host.wait_listening(&address)?;
    let url = format!("http://{address}/");
    let page = root.join("tests/browser/live_page.mjs");
    let screenshot = root.join("target/live-page.png");
    run(Command::new("node")
        .arg(&page)
        .arg(&url)
        .arg("--timeout-ms=60000"))?;
    // A hot swap: the page must show the new generation take over.
    let speed = work.join("modules/speed.wasm");
    let mut bytes = std::fs::read(&speed)?;
    bytes.extend_from_slice(&custom_section(b"waystream-browser-check", b"v2"));
    let temp = speed.with_extension("wasm.tmp");
    std::fs::write(&temp, &bytes)?;
    std::fs::rename(&temp, &speed)?;
    // New points arrive after the swap too, so the map keeps moving.
    run(Command::new(&waystream)
        .args([
            "synth",
            "--users",
            "2",
            "--trajectories",
            "2",
            "--points",
            "800",
            "--seed",
            "7",
            "--out",
        ])
        .arg(work.join("plt/more")))?;
    run(Command::new("node")
        .arg(&page)
        .arg(&url)
        .args([
            "--expect-generation",
            "speed=2",
            "--timeout-ms=60000",
            "--screenshot",
        ])
        .arg(&screenshot))?;
    host.stop()?;
    eprintln!(
        "xtask: live page checked in Chromium; screenshot {}",
        screenshot.display()
    );
    Ok(())
}

/// The embedded default pipeline on this check's folder.
fn config_text(root: &Path) -> String {
    format!(
        "batch_size = 256\n[source]\ntype = \"files\"\npath = \"plt\"\n\
         [[transforms]]\nname = \"parse-plt\"\npath = \"modules/parse-plt.wasm\"\n\
         [[transforms]]\nname = \"geofence\"\npath = \"modules/geofence.wasm\"\n\
         config_files = {{ zones = {:?} }}\n\
         [[transforms]]\nname = \"speed\"\npath = \"modules/speed.wasm\"\nconfig = {{ max_speed_mps = 100 }}\n\
         [sink]\ntype = \"ndjson\"\npath = \"out/points.ndjson\"\n\
         [dead_letter]\ntype = \"ndjson\"\npath = \"out/dead-letter.ndjson\"\n",
        root.join("zones/beijing-demo.geojson")
            .display()
            .to_string()
    )
}

/// A Wasm custom section (id 0) named `name` holding `payload`: a new build of the same
/// component, for a hot swap.
fn custom_section(name: &[u8], payload: &[u8]) -> Vec<u8> {
    let size = 1 + name.len() + payload.len();
    assert!(size < 128 && name.len() < 128, "one-byte LEB128 sizes");
    let mut section = vec![0, size as u8, name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(payload);
    section
}

fn free_address() -> Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.to_string())
}

fn ensure_chromium() -> Result<()> {
    if std::env::var_os("WAYSTREAM_CHROMIUM").is_some() || Path::new("/usr/bin/chromium").exists() {
        return Ok(());
    }
    eprintln!("xtask: installing Debian's chromium for the live page's browser test");
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "chromium"])
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// The host under test; killed if the check fails before [`Host::stop`].
struct Host(Child);

impl Host {
    /// Waits until the host accepts connections on `address`; fails if it exits first.
    fn wait_listening(&mut self, address: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while std::net::TcpStream::connect(address).is_err() {
            if let Some(status) = self.0.try_wait()? {
                bail!("waystream run exited before serving HTTP: {status}");
            }
            if Instant::now() > deadline {
                bail!("waystream run did not serve HTTP on {address} within 120 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// SIGTERM, then wait for a clean exit.
    fn stop(mut self) -> Result<()> {
        run(Command::new("kill").args(["-TERM", &self.0.id().to_string()]))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.0.try_wait()? {
                if !status.success() {
                    bail!("waystream run ended with {status} after SIGTERM");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("waystream run did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
