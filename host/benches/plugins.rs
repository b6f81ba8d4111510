//! Plugin call overhead: the same driver and rule set called natively and through the sandbox,
//! plus instantiation and compilation.

#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop right there

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kakou_driver_xk3190::Xk3190;
use kakou_host::plugin::{LoadOptions, Runtime};
use kakou_host::sdk::harness::{self, DatasetView};
use kakou_host::sdk::model::*;
use kakou_host::sdk::{Driver, Lookups, Rules};
use kakou_rules_weight_check::WeightCheck;

const EXAMPLE: [u8; 12] = [
    0x02, 0x2B, 0x30, 0x30, 0x33, 0x32, 0x36, 0x30, 0x30, 0x31, 0x43, 0x03,
];

fn dev() -> LoadOptions {
    LoadOptions::development()
}

fn feed(c: &mut Criterion) {
    let rt = Runtime::new(None).unwrap();
    let plugin = rt
        .load_driver(&common::plugin("plugins/drivers/xk3190"), &dev())
        .unwrap();
    let every = [Setting::new("report", "every")];
    for frames in [1usize, 100] {
        let input = EXAMPLE.repeat(frames);
        let mut g = c.benchmark_group(format!("xk3190_feed_{frames}_frames"));
        g.throughput(Throughput::Bytes(input.len() as u64));
        let mut native = harness::open::<Xk3190>(&[("report", "every")]).unwrap();
        g.bench_function("native", |b| {
            b.iter(|| black_box(native.feed(black_box(&input))))
        });
        let mut sandboxed = plugin.open(&every).unwrap();
        g.bench_function("sandbox", |b| {
            b.iter(|| black_box(sandboxed.feed(black_box(&input)).unwrap()))
        });
        g.finish();
    }
}

fn evaluate(c: &mut Criterion) {
    let rt = Runtime::new(None).unwrap();
    let plugin = rt
        .load_rules(&common::plugin("plugins/rules/weight-check"), &dev())
        .unwrap();
    let (p, data) = common::weight_fixture();
    let data = Arc::new(data);
    let view = DatasetView::new(data.clone(), 0);
    let lookups: Arc<dyn Lookups + Send + Sync> = Arc::new(DatasetView::new(data, 0));
    let mut g = c.benchmark_group("weight_check_evaluate");
    g.bench_function("native", |b| {
        b.iter(|| black_box(WeightCheck::evaluate(black_box(&p), &view).unwrap()))
    });
    g.bench_function("sandbox (fresh instance per call)", |b| {
        b.iter(|| {
            black_box(
                plugin
                    .evaluate(black_box(&p), Some(lookups.clone()))
                    .unwrap(),
            )
        })
    });
    g.finish();
}

fn instantiate(c: &mut Criterion) {
    let rt = Runtime::new(None).unwrap();
    let plugin = rt
        .load_driver(&common::plugin("plugins/drivers/xk3190"), &dev())
        .unwrap();
    let mut g = c.benchmark_group("instantiate");
    g.bench_function("xk3190 open (instance + decoder)", |b| {
        b.iter(|| black_box(plugin.open(&[]).unwrap()))
    });
    g.finish();
}

fn compile(c: &mut Criterion) {
    let dir = common::plugin("plugins/drivers/xk3190");
    let mut g = c.benchmark_group("load_xk3190");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function(BenchmarkId::new("load", "cold compile"), |b| {
        let rt = Runtime::new(None).unwrap();
        b.iter(|| black_box(rt.load(&dir, &dev()).unwrap()))
    });
    let cache = tempfile::tempdir().unwrap();
    let rt = Runtime::new(Some(cache.path().to_path_buf())).unwrap();
    rt.load(&dir, &dev()).unwrap();
    g.bench_function(BenchmarkId::new("load", "artifact cache hit"), |b| {
        b.iter(|| black_box(rt.load(&dir, &dev()).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, feed, evaluate, instantiate, compile);
criterion_main!(benches);
