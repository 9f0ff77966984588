//! The `waystream` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use waystream::http::Observer;
use waystream::testing::cases::{self, CaseOutcome};
use waystream::{Pipeline, PipelineConfig, synth};

/// Real-time GPS trajectory pipeline with user-defined WebAssembly transforms.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline from a TOML config (the embedded demo pipeline without --config).
    Run {
        /// The pipeline config file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the embedded default config and exit.
        #[arg(long)]
        print_default_config: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Do not watch the modules and the config for changes (hot reload is on by default).
        #[arg(long)]
        no_reload: bool,
        /// Also write the closing summary as JSON to this file.
        #[arg(long)]
        summary_json: Option<PathBuf>,
        /// Keep watching the files source's folder and read new files as they arrive,
        /// until stopped (sets `follow = true` of a files source).
        #[arg(long)]
        follow: bool,
        /// Serve metrics, health, status and the live page on this address (overrides
        /// `[http] listen`), e.g. 127.0.0.1:9464.
        #[arg(long, value_name = "ADDR")]
        http: Option<std::net::SocketAddr>,
    },
    /// Put PLT trajectories into a Kinesis stream, as the ingest Lambda does: from a
    /// folder or s3://bucket/prefix, as fast as possible or at N × real time.
    #[cfg(feature = "aws")]
    Replay {
        /// A folder of .plt / .plt.gz files, or s3://bucket/prefix.
        from: String,
        /// The stream's name or ARN.
        #[arg(long)]
        stream: String,
        /// N × real time, by the points' timestamps (default: as fast as possible).
        #[arg(long)]
        speed: Option<f64>,
        /// Address S3 buckets by path (for S3-compatible servers).
        #[arg(long)]
        s3_path_style: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Generate synthetic Geolife-format trajectories (deterministic for a seed).
    Synth(synth::SynthConfig),
    /// Run test cases (folders with case.toml, input, expected output) and compare.
    Test {
        /// Case folders, or folders to search for them.
        #[arg(default_value = "transforms")]
        paths: Vec<PathBuf>,
        /// Where modules named without a path are: <DIR>/<name>.wasm (default: `modules/`
        /// or `target/modules/` of the case folder or the nearest folder above it).
        #[arg(long, env = "WAYSTREAM_MODULES")]
        modules: Option<PathBuf>,
        /// Write the expected files from the actual output instead of comparing, and show
        /// what changed.
        #[arg(long)]
        update: bool,
    },
    /// Start a transform project (outside this repository) that builds, has a unit test
    /// and a `waystream test` case.
    New {
        /// The transform's name: lower-case letters, digits, - and _.
        name: String,
        /// rust, python or js.
        #[arg(long, default_value = "rust")]
        lang: String,
        /// The folder to create (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Where the language's SDK is (default: in the checkout this binary was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Compile modules into the compiled-module cache ahead of a run or a swap, so they
    /// load in milliseconds.
    Compile {
        /// Component files (.wasm).
        #[arg(required = true)]
        modules: Vec<PathBuf>,
        /// Take `[cache]` and `[limits]` from this pipeline config (the limits change the
        /// compiled code: compile with the config the host runs).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let started = std::time::Instant::now();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse(), started) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, started: std::time::Instant) -> Result<ExitCode> {
    match cli.command {
        Command::Run {
            print_default_config: true,
            ..
        } => {
            print!("{}", waystream::config::EMBEDDED_DEFAULT);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            config: path,
            quiet,
            no_reload,
            summary_json,
            http,
            follow,
            ..
        } => {
            let mut config = match &path {
                Some(path) => PipelineConfig::load(path)?,
                None => PipelineConfig::embedded_default()?,
            };
            if follow {
                config.source.follow()?;
            }
            // Started before the modules load, so /health/ready says 503 until they have.
            let server = match http.or(config.http.listen) {
                Some(address) => {
                    let observer = Observer::new(config.zones());
                    let server = waystream::http::Server::start(address, observer.clone())?;
                    Some((server, observer))
                }
                None => None,
            };
            let mut pipeline = Pipeline::build(&config)?.show_progress(!quiet);
            if let Some((_, observer)) = &server {
                pipeline = pipeline.observe(observer.clone());
            }
            if !no_reload {
                pipeline = pipeline.hot_reload(path.as_deref())?;
            }
            // SIGTERM and SIGINT stop the run gracefully: the batch in flight finishes,
            // the sinks flush, a Kinesis source checkpoints and releases its leases.
            for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
                signal_hook::flag::register(signal, pipeline.stop_flag())?;
            }
            let mut summary = pipeline.run()?;
            summary.process_wall = Some(started.elapsed());
            println!("{summary}");
            if let Some(path) = summary_json {
                let json = serde_json::to_string_pretty(&summary.to_json())?;
                std::fs::write(&path, json + "\n")
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(if summary.balanced() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Test {
            paths,
            modules,
            update,
        } => run_cases(&paths, modules.as_deref(), update),
        Command::New {
            name,
            lang,
            dir,
            sdk,
        } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let files = waystream::new::new_project(&name, &lang, &dir, sdk.as_deref())?;
            println!(
                "wrote {} files in {}; see its README.md",
                files.len(),
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Compile { modules, config } => {
            let config = match &config {
                Some(path) => PipelineConfig::load(path)?,
                None => PipelineConfig::embedded_default()?,
            };
            let engine = waystream::engine::Engine::with_cache(config.limits, &config.cache)?;
            for path in &modules {
                let started = std::time::Instant::now();
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                let digest = waystream::engine::digest_of(&bytes);
                let (_, compiled) = engine
                    .compile(&digest, &bytes)
                    .with_context(|| format!("{} does not compile", path.display()))?;
                println!(
                    "{}: {} in {} ms",
                    path.display(),
                    match compiled {
                        waystream::engine::Compiled::Cached => "already in the cache",
                        waystream::engine::Compiled::Fresh => "compiled",
                    },
                    started.elapsed().as_millis()
                );
            }
            anyhow::ensure!(
                engine.has_disk_cache(),
                "the compiled-module cache is off or has no folder ([cache] in the config, WAYSTREAM_CACHE_DIR): nothing was kept"
            );
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "aws")]
        Command::Replay {
            from,
            stream,
            speed,
            s3_path_style,
            quiet,
        } => {
            use waystream_aws::ingest::{Clients, ReplayFrom, ReplayOptions, replay};
            let clients = Clients::from_env(&stream, s3_path_style)?;
            let options = ReplayOptions {
                speed,
                progress: !quiet,
            };
            let from = ReplayFrom::parse(&from);
            let report = waystream_aws::Aws::shared()?.block_on(replay(
                &from,
                &options,
                Some(&clients.s3),
                &clients.producer,
            ))?;
            println!(
                "put {} points in {} records ({} calls, {} entries resent) into {stream}",
                report.lines, report.records, report.calls, report.resent
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Synth(config) => {
            let report = synth::generate(&config)?;
            println!(
                "wrote {} files, {} point lines ({} corrupt) under {}",
                report.files,
                report.point_lines,
                report.corrupt_lines,
                config.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_cases(paths: &[PathBuf], modules: Option<&Path>, update: bool) -> Result<ExitCode> {
    let cases = cases::find_cases(paths)?;
    anyhow::ensure!(
        !cases.is_empty(),
        "no test cases ({}) under {paths:?}",
        cases::CASE_FILE
    );
    let mut failed = 0;
    for case in &cases {
        let started = std::time::Instant::now();
        let outcome = cases::run_case(case, modules, update);
        let ms = started.elapsed().as_millis();
        match outcome {
            CaseOutcome::Passed => println!("ok       {} ({ms} ms)", case.display()),
            CaseOutcome::Updated(diff) if diff.is_empty() => {
                println!("same     {} ({ms} ms, nothing changed)", case.display())
            }
            CaseOutcome::Updated(diff) => {
                println!("updated  {} ({ms} ms)\n{diff}", case.display())
            }
            CaseOutcome::Failed(report) => {
                failed += 1;
                println!("FAILED   {} ({ms} ms)\n{report}", case.display());
            }
        }
    }
    println!(
        "{} cases: {} passed or updated, {failed} failed",
        cases.len(),
        cases.len() - failed
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
