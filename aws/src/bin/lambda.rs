//! The ingest Lambda: S3 `ObjectCreated` events → KPL-aggregated point lines in Kinesis.
//!
//! Set `WAYSTREAM_STREAM` (a stream name or ARN) in the function's environment; the
//! handler is `waystream_aws::ingest::handle_s3_event`.

use aws_lambda_events::event::s3::S3Event;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use waystream_aws::Aws;
use waystream_aws::ingest::{Clients, handle_s3_event};

fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .without_time()
        .init();
    let stream = std::env::var("WAYSTREAM_STREAM").map_err(|_| "WAYSTREAM_STREAM is not set")?;
    let clients = Clients::from_env(&stream, false)?;
    // The Lambda runtime runs on the shared runtime: one per process.
    Aws::shared()?.block_on(lambda_runtime::run(service_fn(
        |event: LambdaEvent<S3Event>| {
            let clients = clients.clone();
            async move {
                let report = handle_s3_event(&clients, &event.payload).await?;
                Ok::<_, Error>(serde_json::json!({
                    "lines": report.lines,
                    "records": report.records,
                    "calls": report.calls,
                    "resent": report.resent,
                }))
            }
        },
    )))
}
