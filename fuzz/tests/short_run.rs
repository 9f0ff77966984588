//! Each fuzz target on its seed inputs and on seeded mutations of them: not a fuzzing
//! campaign (`cargo fuzz` runs those, see the crate docs), but enough that the targets
//! keep building and their properties keep holding, on stable, in every test run.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Mutations per target: a few seconds in a debug build.
const ROUNDS: usize = 20_000;

/// Bytes mutations insert: the ones the parsers treat specially.
const SPECIAL: &[u8] = b"0123456789-.,: \t\r\n\"'=[]{}#eE+\x00\xff\xc3\xa9";

/// Runs `target` on every seed and on `ROUNDS` mutations of them (bytes replaced,
/// inserted, removed, ranges duplicated), deterministically.
fn exercise(target: fn(&[u8]), seeds: &[&[u8]]) {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    for seed in seeds {
        target(seed);
    }
    for _ in 0..ROUNDS {
        let mut data = seeds[rng.random_range(0..seeds.len())].to_vec();
        for _ in 0..rng.random_range(1..8) {
            let at = rng.random_range(0..=data.len());
            let byte = if rng.random_bool(0.7) {
                SPECIAL[rng.random_range(0..SPECIAL.len())]
            } else {
                rng.random()
            };
            match rng.random_range(0..4) {
                0 if at < data.len() => data[at] = byte,
                1 if at < data.len() => {
                    data.remove(at);
                }
                2 if at < data.len() => {
                    let end = rng.random_range(at..=data.len());
                    let copy = data[at..end].to_vec();
                    data.splice(at..at, copy);
                }
                _ => data.insert(at, byte),
            }
        }
        target(&data);
    }
}

#[test]
fn plt_line() {
    exercise(
        waystream_fuzz::plt_line,
        &[
            b"39.984702,116.318417,0,492,39744.1201851852,2008-10-23,02:53:04",
            b"39.984683,116.31845,0,-777,39744.1202546296,2008-10-23,02:53:10\r",
            b"-33.9,151.2,0,1e3,40000,2012-02-29,23:59:59",
            b"90,-180,0,0,0,0001-01-01,0:0:0",
            b"",
        ],
    );
}

#[test]
fn line_splitter() {
    exercise(
        waystream_fuzz::line_splitter,
        &[
            b"h1\r\nh2\r\n\r\nx\r\n",
            b"a\rb\r\rc\r\r\nd\n\ne",
            b"\r\r\r\n\n\r",
        ],
    );
}

#[test]
fn kpl_aggregate() {
    let aggregate = waystream_contract::aggregation::aggregate([
        (
            "021/20081023025304",
            &b"0\t39.9,116.3,0,492,39744.1,2008-10-23,02:53:04"[..],
        ),
        (
            "021/20081023025304",
            &b"1\t39.9,116.3,0,492,39744.1,2008-10-23,02:53:05"[..],
        ),
        ("022/x", &b"not a line"[..]),
    ]);
    // The protobuf message alone (the target frames it), and the whole record.
    let message = &aggregate[4..aggregate.len() - 16];
    exercise(waystream_fuzz::kpl_aggregate, &[message, &aggregate, b""]);
}

#[test]
fn pipeline_config() {
    exercise(
        waystream_fuzz::pipeline_config,
        &[
            waystream::config::EMBEDDED_DEFAULT.as_bytes(),
            b"batch_size = 3\n[source]\ntype = 'kinesis'\nstream = 's'\nlease_table = 't'\n[[transforms]]\nname = 'a'\npath = 'a.wasm'\n[sink]\ntype = 'firehose'\ndelivery_stream = 'd'\n[dead_letter]\ntype = 's3'\nbucket = 'b'\n[limits]\nmemory_mib = 0\n",
        ],
    );
}
