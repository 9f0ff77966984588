//! A plain HTTP client for the host's server (`GET` over HTTP/1.0) and its metrics parsed
//! by `prometheus-parse`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use prometheus_parse::{Sample, Scrape, Value};

/// `GET path` over HTTP/1.0 (the server then ends the body by closing): status and body.
pub fn get(address: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let malformed = || std::io::Error::other(format!("not an HTTP response: {response:.200}"));
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(malformed)?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(malformed)?;
    Ok((status, body.to_string()))
}

/// `/metrics`, parsed.
pub fn scrape(address: SocketAddr) -> Vec<Sample> {
    let (status, body) = get(address, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("Prometheus text format")
        .samples
}

/// The counters or gauges `name` whose labels include `labels`, with their labels.
pub fn values<'a>(
    samples: &'a [Sample],
    name: &str,
    labels: &[(&str, &str)],
) -> Vec<(&'a Sample, f64)> {
    samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => (s, v),
            ref other => panic!("{name} is not a counter or gauge: {other:?}"),
        })
        .collect()
}

/// The one counter or gauge `name` whose labels include `labels`.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = values(samples, name, labels);
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0].1
}

/// The observation count of the histogram `name` whose `module` label is `module` (none:
/// the histogram without one).
pub fn observations(samples: &[Sample], name: &str, module: Option<&str>) -> f64 {
    let sample = samples
        .iter()
        .find(|s| s.metric == name && s.labels.get("module") == module)
        .unwrap_or_else(|| panic!("no histogram {name} for {module:?}"));
    match &sample.value {
        Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
        other => panic!("{name} is not a histogram: {other:?}"),
    }
}

/// A loopback address with a port free now.
pub fn free_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}
