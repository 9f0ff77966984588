//! Fuzz targets for every parser of bytes waystream does not control.
//!
//! Each target takes arbitrary bytes and checks what must hold for any input: no panic,
//! and a property of the result (a point's values are in range, lines and line ends cover
//! the input exactly, a decoded aggregate encodes back to itself, a refusal says why in a
//! bounded number of bytes). The same functions run two ways:
//!
//! * `cargo fuzz run <target> -s none` in `fuzz/libfuzzer/` (coverage-guided, for long
//!   runs; needs cargo-fuzz, and `RUSTC_BOOTSTRAP=1` on a stable toolchain);
//! * `cargo test -p waystream-fuzz`: each target on its seed inputs and a few thousand
//!   mutations of them, so the targets keep building and their properties keep holding.

use std::path::Path;

use waystream_contract::plt::LineSplitter;
use waystream_contract::{aggregation, kinesis as lines};

/// The longest refusal a parser may write for one line, in bytes: causes quote a field's
/// start, not a megabyte of it.
const MAX_CAUSE: usize = 300;

/// parse-plt's line reader: a point has coordinates in range and a time in a four-digit
/// year; a refusal is short.
pub fn plt_line(data: &[u8]) {
    match parse_plt::parse_line(data) {
        Ok(point) => {
            assert!(
                point.lat.abs() <= 90.0 && point.lon.abs() <= 180.0,
                "{point:?}"
            );
            assert!(point.alt_m.is_none_or(f64::is_finite), "{point:?}");
            // Years 0001 to 9999.
            assert!(
                (-62_135_596_800_000..253_402_300_800_000).contains(&point.ts_ms),
                "{point:?}"
            );
        }
        Err(e) => {
            let cause = e.to_string();
            assert!(cause.len() <= MAX_CAUSE, "a {}-byte cause", cause.len());
        }
    }
}

/// The line splitter of the files source and the ingest: lines and line ends cover the
/// input in order, no line holds a CR or LF, every line end is LF, CR LF, CRs then LF, or
/// one CR, and the line count is the reference count.
pub fn line_splitter(data: &[u8]) {
    let splitter = LineSplitter::new(data);
    let mut covered = 0;
    let mut count = 0;
    for line in splitter {
        assert_eq!(line.start, covered);
        let (text, end) = (&data[line.start..line.end], &data[line.end..line.next]);
        assert!(!text.iter().any(|&b| b == b'\n' || b == b'\r'));
        let valid_end = match end {
            [] => line.next == data.len(),
            [b'\r'] => data.get(line.next) != Some(&b'\n'),
            [crs @ .., b'\n'] => crs.iter().all(|&b| b == b'\r'),
            _ => false,
        };
        assert!(valid_end, "line end {end:?} at {}", line.end);
        covered = line.next;
        count += 1;
    }
    assert_eq!(covered, data.len());
    assert_eq!(count, reference_line_count(data));
}

/// Lines by the splitter's rule, counted the slow, obvious way.
fn reference_line_count(data: &[u8]) -> usize {
    let (mut count, mut i) = (0, 0);
    while i < data.len() {
        count += 1;
        while i < data.len() && data[i] != b'\n' && data[i] != b'\r' {
            i += 1;
        }
        if i < data.len() && data[i] == b'\n' {
            i += 1;
        } else if i < data.len() {
            let run = data[i..].iter().take_while(|&&b| b == b'\r').count();
            i += if data.get(i + run) == Some(&b'\n') {
                run + 1
            } else {
                1
            };
        }
    }
    count
}

/// The KPL de-aggregator, on raw bytes and on the bytes framed as an aggregate (magic and
/// a matching MD5, so the protobuf decoder sees them): no panic, a decoded aggregate packs
/// back into the same records, and each record's line decodes or says why.
pub fn kpl_aggregate(data: &[u8]) {
    let _ = aggregation::deaggregate(data);
    let framed = aggregation::frame(data);
    match aggregation::deaggregate(&framed) {
        aggregation::Deaggregated::Records(records) => {
            let again = aggregation::aggregate(
                records
                    .iter()
                    .map(|r| (r.partition_key.as_str(), r.data.as_slice())),
            );
            assert_eq!(
                aggregation::deaggregate(&again),
                aggregation::Deaggregated::Records(records.clone())
            );
            for record in &records {
                if let Err(cause) = lines::decode(&record.partition_key, &record.data) {
                    assert!(!cause.is_empty());
                }
            }
        }
        aggregation::Deaggregated::Corrupt(cause) => assert!(!cause.is_empty()),
        aggregation::Deaggregated::Plain => panic!("a framed aggregate read as plain"),
    }
}

/// The pipeline config loader, on any text: a config or an error, never a panic.
pub fn pipeline_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(config) = waystream::PipelineConfig::parse(&text, Path::new("/nonexistent")) {
        assert!(config.batch_size > 0 && !config.transforms.is_empty());
    }
}
