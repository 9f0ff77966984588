//! The host's HTTP server: metrics to scrape, health to probe, status to read and a live
//! page to watch.
//!
//! Off unless asked for (`[http] listen = "127.0.0.1:9464"` in the pipeline config, or
//! `waystream run --http ADDR`). It runs on a thread of its own with a one-thread Tokio
//! runtime, never on the chain's thread: a slow or stuck client costs the pipeline nothing.
//! The pipeline publishes into an [`Observer`] once per batch; requests read from it.
//!
//! | path | what |
//! |---|---|
//! | `/metrics` | Prometheus text format (see [`metrics`] for the names) |
//! | `/health/live` | 200 while the process serves requests (a trapping module does not change it) |
//! | `/health/ready` | 200 once every module is loaded and the source is open, 503 before and after the run, and while the source reports it cannot work (Kinesis: its last lease round failed; the body's `source_problem` says why) |
//! | `/status` | JSON: the chain (module, digest, generation, counters), recent reload events and dead-letter causes |
//! | `/` | the live page: recent points on a map over the geofence zones, modules, reloads, dead letters |
//! | `/api/state`, `/api/events` | the page's data: a JSON snapshot, then Server-Sent Events |

mod api;
pub mod metrics;
mod observer;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub use observer::{DeadGroup, ModuleView, Observer, PagePoint};

/// The `[http]` table of a pipeline config.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on (`127.0.0.1:9464`; port 0 picks a free one). None: no server.
    pub listen: Option<SocketAddr>,
}

/// A running server; it stops with the process (or when dropped).
pub struct Server {
    address: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `address` and serves `observer` from a thread of its own.
    pub fn start(address: SocketAddr, observer: Arc<Observer>) -> Result<Server> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the HTTP server's runtime")?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(address))
            .with_context(|| format!("HTTP server: listening on {address}"))?;
        let address = listener.local_addr()?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("waystream-http".into())
            .spawn(move || {
                let app = api::router(observer);
                let served = runtime.block_on(async move {
                    tokio::select! {
                        served = std::future::IntoFuture::into_future(axum::serve(listener, app)) => served,
                        _ = stopped => Ok(()),
                    }
                });
                if let Err(e) = served {
                    tracing::error!("HTTP server stopped: {e}");
                }
                // Dropping the runtime ends the connections still open (event streams).
            })?;
        tracing::info!(%address, "HTTP server: /metrics, /health/live, /health/ready, /status, live page at /");
        Ok(Server {
            address,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The address it listens on (with the port picked, for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
