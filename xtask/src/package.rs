//! `cargo xtask package`: everything a deployment needs, under `target/package/`.
//!
//! * `ingest-lambda.zip`: the ingest Lambda as `bootstrap` for the `provided.al2023`
//!   runtime (x86_64);
//! * `waystream-host.tar.gz` (and its `.sha256`): `bin/waystream`, the three components,
//!   the zones, the AWS pipeline configs and the systemd unit, as `deploy/emr/bootstrap.sh`
//!   installs them on an EMR core node;
//! * `bootstrap.sh`, and `opensearch/` (index template, ISM policies, Dashboards objects).
//!
//! Both binaries are static `x86_64-unknown-linux-musl` builds, so they run on Amazon
//! Linux 2023 whatever its libc. The command adds the Rust target and, where it can,
//! Debian's `musl-tools` (for `musl-gcc`, which the C parts of the TLS library need).
//! `--dev` builds unoptimised (what the test command checks, minutes faster); `--check`
//! then checks what the package ships (see [`check`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{COMPONENTS, DEMO_COMPONENTS, build_components, cargo, output, run};

/// The Rust target of the packaged binaries.
pub const MUSL: &str = "x86_64-unknown-linux-musl";

/// Builds the package; returns its folder.
pub fn package(root: &Path, args: &[String]) -> Result<PathBuf> {
    let (mut dev, mut and_check) = (false, false);
    for arg in args {
        match arg.as_str() {
            "--dev" => dev = true,
            "--check" => and_check = true,
            other => bail!("unknown package option {other:?} (expected --dev, --check)"),
        }
    }
    ensure_musl_toolchain()?;
    build_components(root, &COMPONENTS[..DEMO_COMPONENTS])?;
    let profile = if dev { "debug" } else { "release" };
    for (package, features, bin) in [
        ("waystream", "aws", "waystream"),
        ("waystream-aws", "lambda", "waystream-ingest-lambda"),
    ] {
        let mut build = cargo();
        build.args([
            "build",
            "--target",
            MUSL,
            "-p",
            package,
            "--features",
            features,
            "--bin",
            bin,
        ]);
        if !dev {
            build.arg("--release");
        }
        // No debug info in what is shipped: the binaries are ten times smaller.
        let env = if dev { "DEV" } else { "RELEASE" };
        build.env(format!("CARGO_PROFILE_{env}_DEBUG"), "false");
        build.env(format!("CARGO_PROFILE_{env}_STRIP"), "symbols");
        run(&mut build)?;
    }
    let built = root.join("target").join(MUSL).join(profile);
    let out = root.join("target/package");
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    std::fs::create_dir_all(&out)?;

    // The Lambda: `bootstrap` at the root of a zip (Python's zipfile keeps the mode bits).
    let lambda = out.join("lambda");
    std::fs::create_dir_all(&lambda)?;
    std::fs::copy(
        built.join("waystream-ingest-lambda"),
        lambda.join("bootstrap"),
    )?;
    run(Command::new("python3")
        .current_dir(&lambda)
        .args(["-m", "zipfile", "-c"])
        .arg(out.join("ingest-lambda.zip"))
        .arg("bootstrap"))
    .context("zipping the Lambda (needs python3)")?;

    // The host tarball, laid out as the bootstrap action installs it.
    let host = out.join("host");
    for (from, to) in [
        (built.join("waystream"), "bin/waystream"),
        (
            root.join("target/modules/parse-plt.wasm"),
            "modules/parse-plt.wasm",
        ),
        (
            root.join("target/modules/geofence.wasm"),
            "modules/geofence.wasm",
        ),
        (root.join("target/modules/speed.wasm"), "modules/speed.wasm"),
        (
            root.join("zones/beijing-demo.geojson"),
            "zones/zones.geojson",
        ),
        (
            root.join("deploy/host/pipeline-aws.toml"),
            "deploy/host/pipeline-aws.toml",
        ),
        (
            root.join("deploy/host/pipeline-aws-direct.toml"),
            "deploy/host/pipeline-aws-direct.toml",
        ),
        (
            root.join("deploy/systemd/waystream.service"),
            "deploy/systemd/waystream.service",
        ),
    ] {
        let to = host.join(to);
        std::fs::create_dir_all(to.parent().expect("a file in a folder"))?;
        std::fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
    }
    run(Command::new("tar")
        .arg("-czf")
        .arg(out.join("waystream-host.tar.gz"))
        .arg("-C")
        .arg(&host)
        .arg("."))?;
    let sum = output(
        Command::new("sha256sum")
            .current_dir(&out)
            .arg("waystream-host.tar.gz"),
    )?;
    std::fs::write(out.join("waystream-host.tar.gz.sha256"), sum)?;
    std::fs::copy(
        root.join("deploy/emr/bootstrap.sh"),
        out.join("bootstrap.sh"),
    )?;
    let opensearch = out.join("opensearch");
    std::fs::create_dir_all(&opensearch)?;
    for file in [
        "index-template.json",
        "ism-policy.json",
        "ism-policy-rollover.json",
        "dashboards.ndjson",
    ] {
        std::fs::copy(
            root.join("deploy/opensearch").join(file),
            opensearch.join(file),
        )?;
    }
    std::fs::remove_dir_all(&lambda)?;
    std::fs::remove_dir_all(&host)?;
    eprintln!("xtask: the package is in {}", out.display());
    if and_check {
        check(&out, &root.join("target/package-check"))?;
    }
    Ok(out)
}

/// Checks what the package ships: static binaries, a host that runs from its unpacked
/// tarball in an empty folder, a Lambda zip with an executable `bootstrap`.
pub fn check(package: &Path, scratch: &Path) -> Result<()> {
    if scratch.exists() {
        std::fs::remove_dir_all(scratch)?;
    }
    let host = scratch.join("host");
    std::fs::create_dir_all(&host)?;
    run(Command::new("tar")
        .arg("-xzf")
        .arg(package.join("waystream-host.tar.gz"))
        .arg("-C")
        .arg(&host))?;
    let lambda = scratch.join("lambda");
    run(Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(package.join("ingest-lambda.zip"))
        .arg(&lambda))?;
    // Lambda runs `bootstrap` with the mode bits the zip holds (extracting drops them).
    let mode = output(Command::new("python3").arg("-c").arg(
        "import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).getinfo('bootstrap').external_attr >> 16)",
    ).arg(package.join("ingest-lambda.zip")))?;
    let mode: u32 = mode.trim().parse().context("the zip's mode bits")?;
    anyhow::ensure!(
        mode & 0o111 != 0,
        "bootstrap is not executable in the zip (mode {mode:o})"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            lambda.join("bootstrap"),
            std::fs::Permissions::from_mode(mode & 0o777),
        )?;
    }
    for binary in [host.join("bin/waystream"), lambda.join("bootstrap")] {
        let ldd = Command::new("ldd").arg(&binary).output()?;
        let said = String::from_utf8_lossy(&ldd.stdout).to_string()
            + &String::from_utf8_lossy(&ldd.stderr);
        if !said.contains("statically linked") && !said.contains("not a dynamic executable") {
            bail!("{} is not static: ldd says {said}", binary.display());
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&binary)?.permissions().mode();
        anyhow::ensure!(mode & 0o111 != 0, "{} is not executable", binary.display());
    }
    // From an empty folder: nothing but the tarball's own files.
    let empty = scratch.join("empty");
    std::fs::create_dir_all(&empty)?;
    let version = output(
        Command::new(host.join("bin/waystream"))
            .current_dir(&empty)
            .env_clear()
            .arg("--version"),
    )?;
    anyhow::ensure!(
        version.starts_with("waystream "),
        "--version said {version:?}"
    );
    for file in [
        "modules/parse-plt.wasm",
        "modules/geofence.wasm",
        "modules/speed.wasm",
        "zones/zones.geojson",
        "deploy/host/pipeline-aws.toml",
        "deploy/systemd/waystream.service",
    ] {
        anyhow::ensure!(host.join(file).exists(), "the tarball has no {file}");
    }
    eprintln!(
        "xtask: package checked: static binaries, {} from the unpacked tarball",
        version.trim()
    );
    Ok(())
}

/// The musl target and a musl C compiler: added when missing (the compiler with apt-get,
/// when this is a Debian machine and we may).
fn ensure_musl_toolchain() -> Result<()> {
    let installed =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if !installed.lines().any(|l| l.trim() == MUSL) {
        run(Command::new("rustup").args(["target", "add", MUSL]))?;
    }
    if Command::new("musl-gcc").arg("--version").output().is_ok() {
        return Ok(());
    }
    eprintln!("xtask: musl-gcc is missing: installing Debian's musl-tools");
    // A fresh image may have no package lists yet: install, and on failure update and retry.
    let install = || run(Command::new("apt-get").args(["install", "-y", "-q", "musl-tools"]));
    install()
        .or_else(|_| {
            run(Command::new("apt-get").args(["update", "-q"]))?;
            install()
        })
        .context(
            "musl-gcc (Debian's musl-tools) is needed to build the static binaries; install it",
        )
}
