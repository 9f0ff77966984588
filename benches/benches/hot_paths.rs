//! Criterion micro-benchmarks of the per-record hot paths, on one 1,024-record batch:
//! PLT parsing, the Wasm boundary (an identity module), the geofence index (12 and 2,500
//! zones), the speed step, and document encoding.
//!
//! ```sh
//! cargo xtask build-transforms && cargo bench -p waystream-benches --bench hot_paths
//! ```

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use waystream::engine::bindings as host;
use waystream::engine::{Engine, Instance, Limits, Module};
use waystream_contract::document::{DocumentEncoder, Encoded};
use waystream_guest::{self as guest, Transform};

const N: usize = 1024;

/// N PLT lines of one trajectory walking north-east through Beijing.
fn plt_lines() -> host::Batch {
    let mut raw = host::RawLines::default();
    for i in 0..N as u32 {
        let line = format!(
            "{:.6},{:.6},0,{},39744.{:07},2008-10-23,{:02}:{:02}:{:02}",
            39.90 + f64::from(i) * 0.0001,
            116.30 + f64::from(i) * 0.0002,
            100 + i % 50,
            i,
            2 + i / 3600,
            i / 60 % 60,
            i % 60
        );
        raw.push(line.as_bytes(), 0, i);
    }
    host::Batch {
        trajectories: vec![host::Trajectory {
            user: "000".into(),
            id: "bench".into(),
        }],
        zone_sets: Vec::new(),
        records: host::Records::Lines(raw),
    }
}

/// A `cells` × `cells` grid of square zones over greater Beijing, as geofence's config.
fn grid_zones(cells: usize) -> String {
    let (lat0, lon0, step) = (39.70, 116.10, 0.6 / cells as f64);
    let features: Vec<String> = (0..cells * cells)
        .map(|k| {
            let (row, col) = ((k / cells) as f64, (k % cells) as f64);
            let (s, w) = (lat0 + row * step, lon0 + col * step);
            let (n, e) = (s + step, w + step);
            format!(
                r#"{{"type":"Feature","properties":{{"name":"c{k}"}},"geometry":{{"type":"Polygon","coordinates":[[[{w},{s}],[{e},{s}],[{e},{n}],[{w},{n}],[{w},{s}]]]}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"zones":{{"type":"FeatureCollection","features":[{}]}}}}"#,
        features.join(",")
    )
}

fn guest_points() -> guest::Batch {
    let lines = waystream_benches::to_guest(&plt_lines());
    let trajectories = lines.trajectories.clone();
    let out = parse_plt::ParsePlt
        .process(lines)
        .expect("the bench lines parse");
    guest::Batch {
        trajectories,
        zone_sets: Vec::new(),
        records: guest::Records::Points(out.points),
    }
}

fn parsing(c: &mut Criterion) {
    let batch = plt_lines();
    let host::Records::Lines(raw) = &batch.records else {
        unreachable!()
    };
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("parse_line x1024", |b| {
        b.iter(|| {
            for (line, _, _) in raw.iter() {
                black_box(parse_plt::parse_line(line).ok());
            }
        })
    });
    group.finish();
}

fn boundary(c: &mut Criterion) {
    let engine = Engine::new(Limits::default()).unwrap();
    let module = Module::load(
        &engine,
        "hostile",
        &waystream_tests::module("hostile"),
        "{}".into(),
    )
    .unwrap();
    let mut instance = Instance::new(&engine, module).unwrap();
    let points = guest_points();
    let guest::Records::Points(points) = points.records else {
        unreachable!()
    };
    let batch = host::Batch {
        trajectories: vec![host::Trajectory {
            user: "000".into(),
            id: "bench".into(),
        }],
        zone_sets: Vec::new(),
        records: host::Records::Points(points.iter().collect()),
    };
    let mut group = c.benchmark_group("boundary");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("identity module, 1024 points in and out", |b| {
        b.iter(|| black_box(instance.process(&engine, &batch).unwrap()))
    });
    group.finish();
}

fn spatial_index(c: &mut Criterion) {
    let mut group = c.benchmark_group("geofence");
    group.throughput(Throughput::Elements(N as u64));
    for cells in [4, 50] {
        let mut fence = geofence::Geofence::init(&grid_zones(cells)).unwrap();
        let batch = guest_points();
        group.bench_function(format!("{} zones, 1024 points", cells * cells), |b| {
            b.iter_batched(
                || batch.clone(),
                |batch| black_box(fence.process(batch).unwrap()),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn speed_step(c: &mut Criterion) {
    let guest::Records::Points(points) = guest_points().records else {
        unreachable!()
    };
    let mut group = c.benchmark_group("speed");
    group.throughput(Throughput::Elements(N as u64 - 1));
    group.bench_function("haversine + bearing x1023", |b| {
        b.iter(|| {
            let (lat, lon) = (&points.lat, &points.lon);
            for i in 1..points.len() {
                let (a, z) = ((lat[i - 1], lon[i - 1]), (lat[i], lon[i]));
                black_box(speed::haversine_m(a.0, a.1, z.0, z.1));
                black_box(speed::bearing_deg(a.0, a.1, z.0, z.1));
            }
        })
    });
    group.finish();
}

fn encoding(c: &mut Criterion) {
    let batch = guest_points();
    let guest::Records::Points(points) = &batch.records else {
        unreachable!()
    };
    let host_batch = waystream_benches::with_points(
        &host::Batch {
            trajectories: vec![host::Trajectory {
                user: "000".into(),
                id: "bench".into(),
            }],
            zone_sets: vec![vec!["inside-2nd-ring".into(), "tsinghua".into()]],
            records: host::Records::Points(Default::default()),
        },
        points
            .iter()
            .map(|p| host::Point {
                zones: Some(0),
                ..p
            })
            .collect(),
        None,
    );
    let host::Records::Points(host_points) = &host_batch.records else {
        unreachable!()
    };
    let mut encoder = DocumentEncoder::default();
    let mut out = Encoded::default();
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("1024 documents", |b| {
        b.iter(|| {
            encoder.encode(
                &host_batch.trajectories,
                &host_batch.zone_sets,
                host_points.iter(),
                &mut out,
            );
            black_box(out.bytes.len())
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    parsing,
    boundary,
    spatial_index,
    speed_step,
    encoding
);
criterion_main!(benches);
