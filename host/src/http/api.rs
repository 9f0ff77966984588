//! The routes: health, metrics, status, the live page's files and its data.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use futures_util::Stream;
use serde_json::json;

use super::Observer;

/// How often the page's event stream sends what is new.
const TICK: Duration = Duration::from_millis(250);
/// The chain's counters go out every this many ticks.
const CHAIN_EVERY: u32 = 4;

/// What the page may load: only its own files and its own API.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page's files, built into the binary: it works with no network at all.
const PAGE: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("page/index.html"),
    ),
    (
        "/index.html",
        "text/html; charset=utf-8",
        include_str!("page/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("page/app.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("page/style.css"),
    ),
];

pub(super) fn router(observer: Arc<Observer>) -> Router {
    let mut router = Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/status", get(status))
        .route("/api/state", get(state))
        .route("/api/events", get(events));
    for (path, content_type, body) in PAGE {
        let html = content_type.starts_with("text/html");
        router = router.route(
            path,
            get(move || async move {
                let mut response = ([(header::CONTENT_TYPE, *content_type)], *body).into_response();
                if html {
                    response.headers_mut().insert(
                        header::CONTENT_SECURITY_POLICY,
                        header::HeaderValue::from_static(CSP),
                    );
                }
                response
            }),
        );
    }
    router.with_state(observer)
}

async fn metrics(State(observer): State<Arc<Observer>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        observer.render_metrics(),
    )
        .into_response()
}

async fn live(State(observer): State<Arc<Observer>>) -> Json<serde_json::Value> {
    Json(json!({ "live": true, "uptime_s": observer.uptime().as_secs_f64() }))
}

async fn ready(State(observer): State<Arc<Observer>>) -> Response {
    let ready = observer.is_ready();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let modules: Vec<_> = observer
        .modules()
        .into_iter()
        .map(|m| json!({ "module": m.module, "generation": m.generation }))
        .collect();
    let body = json!({
        "ready": ready,
        "modules": modules,
        "source_problem": observer.source_problem(),
    });
    (code, Json(body)).into_response()
}

async fn status(State(observer): State<Arc<Observer>>) -> Json<serde_json::Value> {
    Json(json!({
        "ready": observer.is_ready(),
        "uptime_s": observer.uptime().as_secs_f64(),
        "chain": observer.modules(),
        "leases": observer.leases(),
        "reload_events": observer.reload_events(),
        "dead_letters": observer.dead_letters(),
    }))
}

async fn state(State(observer): State<Arc<Observer>>) -> Response {
    let body = json!({
        "chain": observer.modules(),
        "zones": observer.zones(),
        "reload_events": observer.reload_events(),
        "dead_letters": observer.dead_letters(),
        "points": observer.recent_points(),
    });
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// The page's event stream: `chain` at once and every second, then `points`, `reload` and
/// `dead_letter` as they come. Each client polls the observer on its own clock; what one
/// client takes as fresh, the others see in the next `chain` and on reconnect in
/// `/api/state` (the page is one operator's view, not an audit log).
async fn events(
    State(observer): State<Arc<Observer>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    struct Client {
        observer: Arc<Observer>,
        last_reload: Option<Instant>,
        tick: u32,
        queue: Vec<Event>,
    }
    let (_, last_reload) = observer.reload_events_since(None);
    let first = Client {
        queue: vec![chain_event(&observer)],
        observer,
        last_reload,
        tick: 0,
    };
    let stream = futures_util::stream::unfold(first, |mut client| async move {
        while client.queue.is_empty() {
            tokio::time::sleep(TICK).await;
            client.tick += 1;
            let (points, dead) = client.observer.take_fresh();
            if !points.is_empty() {
                client.queue.push(json_event("points", &points));
            }
            for group in dead {
                client.queue.push(json_event("dead_letter", &group));
            }
            let (reloads, newest) = client.observer.reload_events_since(client.last_reload);
            client.last_reload = newest;
            for reload in reloads {
                client.queue.push(json_event("reload", &reload));
            }
            if client.tick % CHAIN_EVERY == 0 {
                client.queue.push(chain_event(&client.observer));
            }
            client.queue.reverse();
        }
        let event = client.queue.pop()?;
        Some((Ok(event), client))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn chain_event(observer: &Observer) -> Event {
    json_event("chain", &observer.modules())
}

fn json_event(name: &str, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|_| Event::default().comment("unserialisable"))
}
