//! Plugin call overhead: the same driver and rule set called natively and through the sandbox,
//! a passage judged by the rule plugins a lane runs (cn-baseline + weight-check), the cost of a
//! fresh rules instance alone, driver instantiation and compilation.

#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop right there

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kakou_driver_xk3190::Xk3190;
use kakou_host::plugin::{LoadOptions, PreparedPassage, Runtime};
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

/// What a lane pays per truck for its rules: cn-baseline and weight-check each evaluate the
/// cn-baseline clean-release fixture passage (its registrations and documents as look-ups),
/// each on a fresh instance, as `lane::ruleset` calls them.
fn per_passage(c: &mut Criterion) {
    let rt = Runtime::new(None).unwrap();
    let plugins: Vec<_> = ["plugins/rules/cn-baseline", "plugins/rules/weight-check"]
        .into_iter()
        .map(|rel| rt.load_rules(&common::plugin(rel), &dev()).unwrap())
        .collect();
    let fixture =
        common::root().join("plugins/rules/cn-baseline/fixtures/clean-release.passage.json");
    let (p, data) = kakou_host::plugin::fixtures::read_passage_file(&fixture).unwrap();
    let lookups: Arc<dyn Lookups + Send + Sync> =
        Arc::new(DatasetView::new(Arc::new(data), p.now_ms));
    for plugin in &plugins {
        plugin.evaluate(&p, Some(lookups.clone())).unwrap();
    }
    let mut g = c.benchmark_group("rules_per_passage");
    g.bench_function("cn-baseline + weight-check", |b| {
        b.iter(|| {
            for plugin in &plugins {
                black_box(
                    plugin
                        .evaluate(black_box(&p), Some(lookups.clone()))
                        .unwrap(),
                );
            }
        })
    });
    // As `lane::ruleset` does it: the passage converted once for both plugins.
    g.bench_function("cn-baseline + weight-check, prepared once", |b| {
        b.iter(|| {
            let prepared = PreparedPassage::new(black_box(&p));
            for plugin in &plugins {
                black_box(
                    plugin
                        .evaluate_prepared(&prepared, Some(lookups.clone()))
                        .unwrap(),
                );
            }
        })
    });
    g.finish();
}

/// A fresh rules instance and a call that does no work (hostile-rules declines the passage
/// `refuse` at once): what instantiation costs a rules evaluation, from the runtime's pool and
/// allocated on demand.
fn rules_instance(c: &mut Criterion) {
    let pooled = Runtime::new(None).unwrap();
    let on_demand = Runtime::with_rules_pool(None, None).unwrap();
    let p = Passage {
        id: "refuse".into(),
        now_ms: 1_790_000_000_000,
        ..Default::default()
    };
    let mut g = c.benchmark_group("instantiate");
    for (rt, name) in [
        (&pooled, "rules fresh instance + empty call"),
        (&on_demand, "rules fresh instance + empty call, on demand"),
    ] {
        let plugin = rt
            .load_rules(&common::plugin("tests/plugins/hostile-rules"), &dev())
            .unwrap();
        g.bench_function(name, |b| {
            b.iter(|| black_box(plugin.evaluate(black_box(&p), None).unwrap_err()))
        });
    }
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

criterion_group!(
    benches,
    feed,
    evaluate,
    per_passage,
    rules_instance,
    instantiate,
    compile
);
criterion_main!(benches);
