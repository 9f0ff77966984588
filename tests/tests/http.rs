//! The host's HTTP server on a running pipeline: `/metrics` scraped and parsed as
//! Prometheus text (by `prometheus-parse`), the health endpoints through a run, `/status`,
//! and the live page's files and data.
//!
//! The pipeline reads an endless paced stream (one batch of a bad trajectory makes the
//! hostile guest panic: a trap mid-run), so the endpoints are read while it runs; the
//! server outlives the run, so the last scrape is compared with the closing summary.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use waystream::http::{Observer, Server};
use waystream::{Pipeline, PipelineConfig, Summary};
use waystream_tests::http::{observations, scrape, value};
use waystream_tests::*;

fn get(address: SocketAddr, path: &str) -> (u16, String) {
    waystream_tests::http::get(address, path).unwrap()
}

/// The first `bytes` bytes (or what came in `wait`) of an event stream.
fn read_events(address: SocketAddr, wait: Duration) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    write!(
        stream,
        "GET /api/events HTTP/1.1\r\nHost: {address}\r\n\r\n"
    )
    .unwrap();
    let deadline = Instant::now() + wait;
    let mut text = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buffer[..n]),
            Err(_) => {} // read timeout: keep waiting until the deadline
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn metrics_health_status_and_page_follow_a_run() {
    let dir = tempfile::tempdir().unwrap();
    // The standard chain with the hostile guest after the parser.
    let mut stages = Stage::standard_chain();
    stages.insert(
        1,
        Stage::with("hostile", "config = { behaviour = \"panic\" }"),
    );
    std::fs::create_dir(dir.path().join("unused")).unwrap();
    let config = pipeline_config(
        &dir.path().join("unused"),
        &dir.path().join("out"),
        &stages,
        "batch_size = 100",
    );

    // The server starts before the modules load, as `waystream run` starts it.
    let observer = Observer::new(config.zones());
    let server = Server::start("127.0.0.1:0".parse().unwrap(), observer.clone()).unwrap();
    let address = server.address();
    let (status, body) = get(address, "/health/ready");
    assert_eq!(status, 503, "{body}");
    assert_eq!(serde_json::from_str::<Json>(&body).unwrap()["ready"], false);
    assert_eq!(get(address, "/health/live").0, 200);

    let source = StreamSource::new(12, 100, Duration::from_millis(5)).with_bad_batch(20);
    let (stop, emitted) = (source.stop_flag(), source.emitted());
    let run = std::thread::spawn({
        let config: PipelineConfig = config.clone();
        let observer = observer.clone();
        move || -> Summary {
            Pipeline::build(&config)
                .unwrap()
                .show_progress(false)
                .with_source(Box::new(source))
                .observe(observer)
                .run()
                .unwrap()
        }
    });
    wait_until("ready", || get(address, "/health/ready").0 == 200);
    // Past the bad batch: the hostile module has trapped, the process is live all along.
    wait_until("the trap", || {
        assert_eq!(get(address, "/health/live").0, 200);
        value(
            &scrape(address),
            "waystream_module_traps_total",
            &[("module", "hostile")],
        ) == 1.0
    });
    let during = scrape(address);
    assert!(value(&during, "waystream_records_in_total", &[]) > 0.0);
    assert!(observations(&during, "waystream_chain_batch_seconds", None) > 0.0);
    assert_eq!(value(&during, "waystream_ready", &[]), 1.0);

    let status: Json = serde_json::from_str(&get(address, "/status").1).unwrap();
    let chain: Vec<&str> = status["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["module"].as_str().unwrap())
        .collect();
    assert_eq!(chain, ["parse-plt", "hostile", "geofence", "speed"]);
    assert!(status["leases"].is_null(), "a files source holds no leases");
    let causes = status["dead_letters"].as_array().unwrap();
    assert!(
        causes.iter().any(|d| d["module"] == "hostile"
            && d["cause"].as_str().unwrap().contains("panics on purpose")),
        "{causes:?}"
    );

    // The live page: its files (no other origin allowed), its state and its events.
    let (code, page) = get(address, "/");
    assert_eq!(code, 200);
    assert!(page.contains("app.js"));
    assert_eq!(get(address, "/app.js").0, 200);
    let state: Json = serde_json::from_str(&get(address, "/api/state").1).unwrap();
    assert_eq!(state["zones"]["type"], "FeatureCollection");
    assert!(!state["points"].as_array().unwrap().is_empty());
    let point = &state["points"][0];
    assert!(
        point["lat"].is_f64() && point["lon"].is_f64() && point["user"].is_string(),
        "{point}"
    );
    let events = read_events(address, Duration::from_millis(1500));
    assert!(events.contains("event: chain"), "{events}");
    assert!(events.contains("event: points"), "{events}");

    stop.store(true, Ordering::SeqCst);
    let summary = run.join().unwrap();
    assert!(summary.balanced());
    assert_eq!(get(address, "/health/ready").0, 503);

    // At the end the counters are the summary's, exactly.
    let end = scrape(address);
    assert_eq!(
        value(&end, "waystream_records_in_total", &[]),
        summary.records_in as f64
    );
    assert_eq!(summary.records_in, emitted.load(Ordering::SeqCst));
    assert_eq!(
        value(&end, "waystream_documents_written_total", &[])
            - value(&end, "waystream_documents_refused_total", &[]),
        summary.documents_out as f64
    );
    let dead: f64 = ["rejected", "batch_failed", "sink", "source"]
        .iter()
        .map(|class| value(&end, "waystream_dead_letters_total", &[("class", class)]))
        .sum();
    assert_eq!(dead, summary.dead_letters as f64);
    assert_eq!(
        value(
            &end,
            "waystream_dead_letters_total",
            &[("class", "batch_failed")]
        ),
        100.0,
        "the bad batch, failed as a whole"
    );
    let mut seen = HashMap::new();
    for (module, stats) in &summary.modules {
        let labels = [("module", module.name.as_str())];
        let count = |name| value(&end, name, &labels);
        assert_eq!(
            count("waystream_module_records_in_total"),
            stats.records_in as f64
        );
        assert_eq!(
            count("waystream_module_points_out_total"),
            stats.points_out as f64
        );
        assert_eq!(
            count("waystream_module_rejected_total"),
            stats.rejected as f64
        );
        assert_eq!(
            count("waystream_module_failed_records_total"),
            stats.failed_records as f64
        );
        assert_eq!(count("waystream_module_traps_total"), stats.traps as f64);
        assert_eq!(
            observations(&end, "waystream_module_batch_seconds", Some(&module.name)),
            stats.batches as f64
        );
        let generation = module.generation.to_string();
        let info = [
            ("module", module.name.as_str()),
            ("digest", module.digest.as_str()),
            ("generation", generation.as_str()),
        ];
        assert_eq!(value(&end, "waystream_module_info", &info), 1.0);
        seen.insert(module.name.clone(), stats.records_in);
    }
    assert_eq!(seen.len(), 4);
    assert_eq!(
        value(&end, "waystream_output_queue_batches", &[]),
        0.0,
        "all written"
    );
    assert_eq!(
        value(&end, "waystream_reloads_total", &[("outcome", "refused")]),
        0.0
    );
    let state = summary.state.expect("[state] bounds by default");
    assert!(state.tracked > 0);
    assert_eq!(
        value(&end, "waystream_state_trajectories", &[]),
        state.tracked as f64
    );
    assert_eq!(
        value(&end, "waystream_state_dropped_total", &[("reason", "idle")]),
        0.0
    );
    assert!(value(&end, "process_resident_memory_bytes", &[]) > 1e6);
    assert!(value(&end, "process_cpu_seconds_total", &[]) > 0.0);
    drop(server);
}

/// `deploy/grafana/waystream.json` queries only metrics the host exports, and is a
/// dashboard Grafana can import (panels with ids, a Prometheus datasource, queries).
#[test]
fn the_grafana_dashboard_queries_only_what_the_host_exports() {
    let path = workspace().join("deploy/grafana/waystream.json");
    let dashboard: Json = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let exported: Vec<&str> = waystream::http::metrics::names().collect();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    let mut ids = std::collections::HashSet::new();
    let mut queried = std::collections::BTreeSet::new();
    for panel in panels {
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "duplicate panel id"
        );
        assert_eq!(
            panel["datasource"]["type"], "prometheus",
            "{}",
            panel["title"]
        );
        let grid = &panel["gridPos"];
        assert!(grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24);
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            for name in metric_names(expr) {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .filter(|base| exported.contains(base))
                    .unwrap_or(&name);
                assert!(
                    exported.contains(&base),
                    "{}: {name} is not a metric the host exports",
                    panel["title"]
                );
                queried.insert(base.to_string());
            }
        }
    }
    // The main series are on it.
    for name in [
        "waystream_records_in_total",
        "waystream_module_batch_seconds",
        "waystream_kinesis_millis_behind_latest",
        "waystream_record_age_seconds",
    ] {
        assert!(queried.contains(name), "the dashboard shows no {name}");
    }
}

/// The metric names in a PromQL expression: identifiers starting `waystream_` or `process_`.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if starts_word && (expr[i..].starts_with("waystream_") || expr[i..].starts_with("process_"))
        {
            let end = expr[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(expr.len(), |n| i + n);
            names.push(expr[i..end].to_string());
            i = end;
        } else {
            i += 1;
        }
    }
    names
}
