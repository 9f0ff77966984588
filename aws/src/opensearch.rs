//! The OpenSearch sink: documents indexed through the `_bulk` API with `_id = point_id`.
//!
//! Firehose gives each of its records an id of its own, so a point the host sends again
//! after a crash (at-least-once delivery) becomes a second document. This sink sets each
//! document's `_id` to its `point_id` instead: a point sent twice overwrites itself, and
//! the index holds every point once.
//!
//! Documents collect into bulk requests of at most `max_bulk_bytes`. In a response, each
//! item has its own status: a 2xx is indexed; a 429 or a 5xx is sent again, alone with the
//! other items that failed so, after a backoff; any other status (a mapping error, a
//! document OpenSearch cannot parse) is *refused*: the pipeline takes it back with
//! [`OpenSearchSink::take_refused`] and writes it to the dead-letter sink with
//! OpenSearch's reason. A whole request that fails (network, 429, 5xx, 403) is sent again.
//! Retries follow [`retry::SINK_PUT`]: never given up while the pipeline runs, given up
//! [`retry::STOP_GRACE`] after a stop. [`OpenSearchSink::flush`] returns only when every
//! document written so far is indexed or refused, so the pipeline acknowledges nothing
//! before that.
//!
//! Authentication: SigV4 for Amazon OpenSearch Service domains (credentials and region from
//! aws-config's default chain), HTTP basic for self-managed clusters (the password from an
//! environment variable), or none; TLS with the system's root certificates.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use waystream_contract::document::Encoded;

use crate::retry::{self, Backoff, Policy, Retrier, StopFlag};
use crate::runtime::Aws;

/// `type = "opensearch"` in `[sink]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpenSearchConfig {
    /// The cluster's URL, `https://host[:port]`.
    pub endpoint: String,
    /// The index (or write alias) documents go to.
    pub index: String,
    /// How requests authenticate.
    #[serde(default)]
    pub auth: Auth,
    /// The user, with `auth = "basic"`.
    #[serde(default)]
    pub username: Option<String>,
    /// The environment variable holding the password, with `auth = "basic"`.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The region to sign for, with `auth = "sigv4"` (default: the AWS config's).
    #[serde(default)]
    pub region: Option<String>,
    /// The most bytes of documents one bulk request carries.
    #[serde(default = "default_max_bulk_bytes")]
    pub max_bulk_bytes: usize,
    /// The first retry waits about this long; each further one twice as long.
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// The longest wait between two attempts.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
}

fn default_max_bulk_bytes() -> usize {
    5 << 20
}
fn default_retry_base_ms() -> u64 {
    100
}
fn default_max_backoff_ms() -> u64 {
    10_000
}

/// How requests to the cluster authenticate.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    /// AWS Signature Version 4 (Amazon OpenSearch Service).
    #[default]
    Sigv4,
    /// HTTP basic authentication.
    Basic,
    /// No authentication (a local cluster).
    None,
}

/// A document OpenSearch refused for good, with its reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    /// The document (with its `\n`).
    pub document: Vec<u8>,
    /// OpenSearch's status and reason.
    pub reason: String,
}

/// The reply to a `_bulk` request.
#[derive(Debug, Clone)]
pub struct BulkReply {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// `POST <index>/_bulk`, as the sink needs it: implemented over HTTPS by [`HttpBulk`] and
/// by fakes in tests.
pub trait BulkClient: Send {
    /// Sends one bulk body; an error is a request that got no reply.
    fn post_bulk(&mut self, body: &[u8]) -> Result<BulkReply, String>;
}

/// What the sink did.
#[derive(Debug, Default)]
pub struct OpenSearchStats {
    /// Documents indexed.
    pub indexed: AtomicU64,
    /// Bulk requests sent.
    pub requests: AtomicU64,
    /// Items sent again after a 429 or 5xx of their own.
    pub items_retried: AtomicU64,
    /// Whole requests that failed and were sent again.
    pub requests_failed: AtomicU64,
    /// Documents refused for good (to the dead letters).
    pub refused: AtomicU64,
}

/// Indexes documents through `_bulk`; see the module docs.
pub struct OpenSearchSink<C: BulkClient> {
    client: C,
    config: OpenSearchConfig,
    pending: Encoded,
    refused: Vec<Refused>,
    stats: Arc<OpenSearchStats>,
    stop: StopFlag,
}

impl OpenSearchSink<HttpBulk> {
    /// A sink on the configured cluster. `stop` is the pipeline's stop flag.
    pub fn open(config: &OpenSearchConfig, stop: StopFlag) -> Result<Self> {
        let client = HttpBulk::connect(config)
            .with_context(|| format!("opensearch sink {}", config.endpoint))?;
        Ok(OpenSearchSink::new(client, config.clone(), stop))
    }
}

impl<C: BulkClient> OpenSearchSink<C> {
    /// A sink calling `client`; retrying stops [`retry::STOP_GRACE`] after `stop` is set.
    pub fn new(client: C, config: OpenSearchConfig, stop: StopFlag) -> Self {
        OpenSearchSink {
            client,
            config,
            pending: Encoded::default(),
            refused: Vec::new(),
            stats: Arc::default(),
            stop,
        }
    }

    /// Counters shared with whoever wants to watch them.
    pub fn stats(&self) -> Arc<OpenSearchStats> {
        self.stats.clone()
    }

    /// Queues documents (each ending in `\n`), sending a bulk request whenever
    /// `max_bulk_bytes` are queued.
    pub fn write(&mut self, documents: &Encoded) -> Result<()> {
        for document in documents.iter() {
            if !self.pending.is_empty()
                && self.pending.bytes.len() + document.len() > self.config.max_bulk_bytes
            {
                self.send_pending()?;
            }
            self.pending.push(document);
        }
        Ok(())
    }

    /// Sends what is queued; returns once every document written so far is indexed or
    /// refused.
    pub fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.send_pending()
    }

    /// The documents refused for good since the last call, with their reasons.
    pub fn take_refused(&mut self) -> Vec<Refused> {
        std::mem::take(&mut self.refused)
    }

    fn send_pending(&mut self) -> Result<()> {
        let documents: Vec<&[u8]> = self.pending.iter().collect();
        let mut waiting: Vec<usize> = (0..documents.len()).collect();
        let policy = Policy {
            backoff: Backoff {
                base: Duration::from_millis(self.config.retry_base_ms),
                max: Duration::from_millis(self.config.max_backoff_ms),
            },
            ..retry::SINK_PUT
        };
        let mut retrier = Retrier::new(policy, Some(self.stop.clone()));
        while !waiting.is_empty() {
            let body = bulk_body(waiting.iter().map(|&i| documents[i]));
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let failure = match self.client.post_bulk(&body) {
                Ok(reply) if reply.status == 200 => match sort_items(&reply.body, waiting.len()) {
                    Ok(items) => {
                        let mut again = Vec::new();
                        for (&i, item) in waiting.iter().zip(items) {
                            match item {
                                Item::Indexed => {
                                    self.stats.indexed.fetch_add(1, Ordering::Relaxed);
                                }
                                Item::Again => again.push(i),
                                Item::Refused(reason) => {
                                    self.stats.refused.fetch_add(1, Ordering::Relaxed);
                                    self.refused.push(Refused {
                                        document: documents[i].to_vec(),
                                        reason,
                                    });
                                }
                            }
                        }
                        self.stats
                            .items_retried
                            .fetch_add(again.len() as u64, Ordering::Relaxed);
                        waiting = again;
                        if waiting.is_empty() {
                            break;
                        }
                        format!("{} items refused for now (429 or 5xx)", waiting.len())
                    }
                    Err(e) => e,
                },
                Ok(reply) => {
                    self.stats.requests_failed.fetch_add(1, Ordering::Relaxed);
                    format!(
                        "HTTP {}: {}",
                        reply.status,
                        String::from_utf8_lossy(&reply.body[..reply.body.len().min(300)])
                    )
                }
                Err(e) => {
                    self.stats.requests_failed.fetch_add(1, Ordering::Relaxed);
                    e
                }
            };
            let Some(wait) = retrier.failed() else {
                anyhow::bail!(
                    "opensearch {}: the pipeline is stopping and {} documents are not indexed ({failure}); they are not acknowledged and will be read again",
                    self.config.endpoint,
                    waiting.len()
                );
            };
            tracing::warn!(endpoint = %self.config.endpoint, attempt = retrier.failures(), "bulk request: {failure}; retrying");
            std::thread::sleep(wait);
        }
        self.pending.clear();
        Ok(())
    }
}

/// The `_bulk` body for `documents`: an `index` action with the document's `point_id` as
/// `_id`, then the document.
fn bulk_body<'a>(documents: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    for document in documents {
        match point_id(document) {
            Some(id) => {
                body.extend_from_slice(br#"{"index":{"_id":""#);
                body.extend_from_slice(id);
                body.extend_from_slice(b"\"}}\n");
            }
            None => body.extend_from_slice(b"{\"index\":{}}\n"),
        }
        body.extend_from_slice(document);
        if !document.ends_with(b"\n") {
            body.push(b'\n');
        }
    }
    body
}

/// The `point_id` of a document as the encoder writes it (its last field).
fn point_id(document: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = br#""point_id":""#;
    let at = document.windows(KEY.len()).rposition(|w| w == KEY)? + KEY.len();
    let id = document.get(at..at + 16)?;
    id.iter().all(u8::is_ascii_hexdigit).then_some(id)
}

/// What became of one item of a bulk request.
enum Item {
    Indexed,
    /// 429 or 5xx: send it again.
    Again,
    /// Refused for good, with the reason.
    Refused(String),
}

/// The items of a 200 reply to a bulk request of `count` items, in order.
fn sort_items(body: &[u8], count: usize) -> Result<Vec<Item>, String> {
    #[derive(Deserialize)]
    struct Reply {
        #[serde(default)]
        errors: bool,
        items: Vec<std::collections::HashMap<String, ItemReply>>,
    }
    #[derive(Deserialize)]
    struct ItemReply {
        status: u16,
        #[serde(default)]
        error: Option<serde_json::Value>,
    }
    let reply: Reply =
        serde_json::from_slice(body).map_err(|e| format!("an unreadable bulk reply: {e}"))?;
    if reply.items.len() != count {
        return Err(format!(
            "a bulk reply of {} items for {count} documents",
            reply.items.len()
        ));
    }
    if !reply.errors {
        return Ok((0..count).map(|_| Item::Indexed).collect());
    }
    Ok(reply
        .items
        .into_iter()
        .map(|item| {
            let Some(item) = item.into_values().next() else {
                return Item::Again;
            };
            match item.status {
                200..=299 => Item::Indexed,
                429 | 500..=599 => Item::Again,
                status => {
                    let error = item.error.unwrap_or_default();
                    let text = |key: &str| error[key].as_str().unwrap_or("").to_string();
                    Item::Refused(format!(
                        "opensearch refused the document (HTTP {status}): {}: {}",
                        text("type"),
                        text("reason")
                    ))
                }
            }
        })
        .collect())
}

/// [`BulkClient`] over HTTPS (or HTTP), through the shared runtime.
pub struct HttpBulk {
    aws: &'static Aws,
    client: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        http_body_util::Full<bytes::Bytes>,
    >,
    url: http::Uri,
    auth: Authorizer,
}

/// What each request carries to authenticate.
enum Authorizer {
    None,
    Basic(String),
    Sigv4 {
        credentials: aws_credential_types::provider::SharedCredentialsProvider,
        region: String,
    },
}

impl HttpBulk {
    /// A client for `config`'s cluster and index.
    pub fn connect(config: &OpenSearchConfig) -> Result<Self> {
        let aws = Aws::shared()?;
        let url: http::Uri = format!(
            "{}/{}/_bulk",
            config.endpoint.trim_end_matches('/'),
            config.index
        )
        .parse()
        .context("the endpoint is not a URL")?;
        let auth = match config.auth {
            Auth::None => Authorizer::None,
            Auth::Basic => {
                use base64::Engine as _;
                let user = config
                    .username
                    .as_deref()
                    .context("auth = \"basic\" needs a username")?;
                let variable = config
                    .password_env
                    .as_deref()
                    .context("auth = \"basic\" needs password_env")?;
                let password = std::env::var(variable)
                    .with_context(|| format!("{variable} (the password) is not set"))?;
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Authorizer::Basic(format!("Basic {token}"))
            }
            Auth::Sigv4 => Authorizer::Sigv4 {
                credentials: aws
                    .config()
                    .credentials_provider()
                    .context("no AWS credentials to sign with")?,
                region: config
                    .region
                    .clone()
                    .or_else(|| aws.config().region().map(|r| r.to_string()))
                    .context("no region to sign for: set region or AWS_REGION")?,
            },
        };
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .context("loading the system's root certificates")?
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector);
        Ok(HttpBulk {
            aws,
            client,
            url,
            auth,
        })
    }

    async fn post(&self, body: &[u8]) -> Result<BulkReply, String> {
        use http_body_util::BodyExt;
        let mut request = http::Request::post(self.url.clone())
            .header("content-type", "application/x-ndjson")
            .body(http_body_util::Full::new(bytes::Bytes::copy_from_slice(
                body,
            )))
            .map_err(|e| e.to_string())?;
        match &self.auth {
            Authorizer::None => {}
            Authorizer::Basic(header) => {
                let value = header.parse().map_err(|_| "a bad basic auth header")?;
                request.headers_mut().insert("authorization", value);
            }
            Authorizer::Sigv4 {
                credentials,
                region,
            } => sign(&mut request, body, credentials, region).await?,
        }
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| format!("no reply: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the reply: {e}"))?
            .to_bytes()
            .to_vec();
        Ok(BulkReply { status, body })
    }
}

/// Signs `request` (whose body is `body`) for the `es` service.
async fn sign(
    request: &mut http::Request<http_body_util::Full<bytes::Bytes>>,
    body: &[u8],
    credentials: &aws_credential_types::provider::SharedCredentialsProvider,
    region: &str,
) -> Result<(), String> {
    use aws_credential_types::provider::ProvideCredentials;
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let identity = credentials
        .provide_credentials()
        .await
        .map_err(|e| format!("AWS credentials: {e}"))?
        .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("es")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let uri = request.uri().to_string();
    let signable = SignableRequest::new(
        request.method().as_str(),
        &uri,
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

impl BulkClient for HttpBulk {
    fn post_bulk(&mut self, body: &[u8]) -> Result<BulkReply, String> {
        self.aws.block_on(self.post(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_document_is_indexed_under_its_point_id() {
        let doc = br#"{"user":"u","seq":1,"flags":[],"point_id":"8bf7c9319eca9ece"}
"#;
        let body = bulk_body([&doc[..]].into_iter());
        assert_eq!(
            body,
            [
                &br#"{"index":{"_id":"8bf7c9319eca9ece"}}
"#[..],
                doc
            ]
            .concat()
        );
        assert_eq!(point_id(b"{\"point_id\":\"xyz\"}"), None);
    }

    #[test]
    fn items_are_sorted_into_indexed_again_and_refused() {
        let reply = br#"{"took":3,"errors":true,"items":[
            {"index":{"_id":"a","status":201}},
            {"index":{"_id":"b","status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}},
            {"index":{"_id":"c","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [location]"}}},
            {"index":{"_id":"d","status":503}}]}"#;
        let items = sort_items(reply, 4).unwrap();
        assert!(matches!(items[0], Item::Indexed));
        assert!(matches!(items[1], Item::Again));
        assert!(
            matches!(&items[2], Item::Refused(r) if r.contains("mapper_parsing_exception: failed to parse field [location]"))
        );
        assert!(matches!(items[3], Item::Again));
        assert!(sort_items(reply, 3).is_err());
    }
}
