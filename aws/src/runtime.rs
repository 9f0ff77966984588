//! The one runtime and SDK config every AWS part uses.
//!
//! The pipeline's threads are not async; the AWS SDK is. Each part that calls AWS used
//! to start its own Tokio runtime and load its own config; now [`Aws::shared`] makes one
//! small multi-threaded runtime and one `SdkConfig` from aws-config's default chain, the
//! first time any part asks, and every part uses them: blocking callers through
//! [`Aws::block_on`], async ones (the Kinesis workers) by spawning on [`Aws::runtime`].

use std::future::Future;
use std::sync::OnceLock;

use anyhow::{Context, Result};

/// The shared runtime and SDK config.
pub struct Aws {
    runtime: tokio::runtime::Runtime,
    config: aws_config::SdkConfig,
}

static SHARED: OnceLock<Aws> = OnceLock::new();

impl Aws {
    /// The process's runtime and config, made on first use.
    pub fn shared() -> Result<&'static Aws> {
        if let Some(aws) = SHARED.get() {
            return Ok(aws);
        }
        // Made on a thread of its own, so that a caller inside some other async context
        // (a test's runtime, say) can ask too.
        let aws = std::thread::spawn(|| -> Result<Aws> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                // The work is waiting on the network: two threads are plenty, and the
                // chain keeps the cores.
                .worker_threads(2)
                .thread_name("waystream-aws")
                .enable_all()
                .build()
                .context("starting the AWS runtime")?;
            let config = runtime.block_on(aws_config::load_defaults(
                aws_config::BehaviorVersion::latest(),
            ));
            Ok(Aws { runtime, config })
        })
        .join()
        .map_err(|_| anyhow::anyhow!("starting the AWS runtime panicked"))??;
        // Another thread may have made one meanwhile: keep the first, drop ours (off any
        // async context, where dropping a runtime would panic).
        if let Err(ours) = SHARED.set(aws) {
            std::thread::spawn(move || drop(ours));
        }
        Ok(SHARED.get().expect("set above"))
    }

    /// The SDK config (credentials, region, endpoints) every client is built from.
    pub fn config(&self) -> &aws_config::SdkConfig {
        &self.config
    }

    /// The runtime, for spawning long-running tasks.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// Runs `future` to completion from a thread that is not async (the pipeline's).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// An S3 client; `path_style` for S3-compatible servers that address buckets by path.
    pub fn s3(&self, path_style: bool) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.config)
                .force_path_style(path_style)
                .build(),
        )
    }
}
