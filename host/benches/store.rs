//! Store benchmarks.
//!
//! - `write`: passages written per second with durable commits (`Durability::Immediate`), one
//!   passage per transaction and 100 per transaction, in the daemon's shared mode (redb
//!   `SingleWriter`: two-phase commits, so other processes can read beside it) and in
//!   exclusive mode (one-phase commits).
//! - `writers`: passages written per second by 1, 8 and 64 concurrent writers, each waiting
//!   for its durable commit before the next passage: through the store [`Writer`] (tokio
//!   tasks on two worker threads; concurrent jobs share one commit) against each writer
//!   calling `Store::write` on its own thread (one commit per passage), in shared mode.
//! - `query_1m`: indexed look-ups on a store of one million passages (by container, by plate,
//!   by lane and time) against a full scan of the passages table for the same container.
//!
//! The million-passage store is built once into `target/store-bench/` with large batched
//! transactions and reused by later runs (its name carries the schema and generator version).
//! `KAKOU_BENCH_PASSAGES` changes its size.
//!
//! `cargo bench -p kakou-host --bench store` (`-- writers` for one group)

#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop right there

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kakou_host::store::sample::{synthetic_container, synthetic_passage, synthetic_plate};
use kakou_host::store::{PassageRecord, SCHEMA_VERSION, Store, StoreError, StoreOptions, Writer};

const BASE_MS: i64 = 1_795_737_600_000;
/// Bump when `synthetic_passage` changes, so an old prebuilt store is not reused.
const GENERATOR: u32 = 1;
const BUILD_BATCH: u64 = 20_000;

fn write(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("write");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    for (mode, shared) in [("shared", true), ("exclusive", false)] {
        let options = StoreOptions {
            shared,
            ..Default::default()
        };
        let store = Store::open_with(dir.path().join(format!("{mode}.redb")), &options).unwrap();
        let mut n = 0u64;
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("one_per_txn/{mode}"), |b| {
            b.iter_batched(
                || {
                    n += 1;
                    synthetic_passage(n, BASE_MS)
                },
                |rec| store.write(|tx| tx.put_passage(&rec)).unwrap(),
                BatchSize::SmallInput,
            )
        });
        g.throughput(Throughput::Elements(100));
        g.bench_function(format!("batch_100/{mode}"), |b| {
            b.iter_batched(
                || {
                    (0..100)
                        .map(|_| {
                            n += 1;
                            synthetic_passage(n, BASE_MS)
                        })
                        .collect::<Vec<_>>()
                },
                |recs| {
                    store
                        .write(|tx| {
                            for r in &recs {
                                tx.put_passage(r)?;
                            }
                            Ok::<_, StoreError>(())
                        })
                        .unwrap()
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// `count` new passages dealt round-robin to `writers` writers.
fn dealt(next: &mut u64, count: u64, writers: u64) -> Vec<Vec<PassageRecord>> {
    let mut hands: Vec<Vec<PassageRecord>> = (0..writers).map(|_| Vec::new()).collect();
    for i in 0..count {
        *next += 1;
        hands[(i % writers) as usize].push(synthetic_passage(*next, BASE_MS));
    }
    hands
}

fn writers(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("writers.redb")).unwrap();
    let writer = Writer::spawn(store.clone()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let mut next = 0u64;
    let mut g = c.benchmark_group("writers");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6))
        .throughput(Throughput::Elements(1));
    for n in [1u64, 8, 64] {
        g.bench_function(format!("writer/{n}"), |b| {
            b.iter_custom(|iters| {
                let hands = dealt(&mut next, iters, n);
                let started = Instant::now();
                rt.block_on(async {
                    let tasks: Vec<_> = hands
                        .into_iter()
                        .map(|hand| {
                            let writer = writer.clone();
                            tokio::spawn(async move {
                                for rec in hand {
                                    writer.write(move |tx| tx.put_passage(&rec)).await.unwrap();
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                });
                started.elapsed()
            })
        });
        g.bench_function(format!("store_write/{n}"), |b| {
            b.iter_custom(|iters| {
                let hands = dealt(&mut next, iters, n);
                let started = Instant::now();
                std::thread::scope(|s| {
                    for hand in hands {
                        let store = &store;
                        s.spawn(move || {
                            for rec in hand {
                                store.write(|tx| tx.put_passage(&rec)).unwrap();
                            }
                        });
                    }
                });
                started.elapsed()
            })
        });
    }
    g.finish();
    let stats = writer.stats();
    eprintln!(
        "writer: {} passages in {} commits (largest {}), {:.2} ms of commit each on average",
        stats.jobs,
        stats.batches,
        stats.largest_batch,
        stats.commit_time.as_secs_f64() * 1e3 / stats.batches.max(1) as f64
    );
}

fn million() -> (Store, u64) {
    let count: u64 = std::env::var("KAKOU_BENCH_PASSAGES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/store-bench");
    let path = dir.join(format!(
        "passages-{count}-schema{SCHEMA_VERSION}-gen{GENERATOR}.redb"
    ));
    let done = path.with_extension("complete");
    let options = StoreOptions {
        cache_bytes: 512 << 20,
        ..Default::default()
    };
    if !done.exists() {
        let _ = std::fs::remove_file(&path);
        eprintln!("building {} ({count} passages, once)…", path.display());
        let started = Instant::now();
        let store = Store::open_with(&path, &options).unwrap();
        let mut n = 0;
        while n < count {
            let end = (n + BUILD_BATCH).min(count);
            let recs: Vec<_> = (n..end).map(|i| synthetic_passage(i, BASE_MS)).collect();
            store
                .write(|tx| {
                    for r in &recs {
                        tx.put_passage(r)?;
                    }
                    Ok::<_, StoreError>(())
                })
                .unwrap();
            n = end;
        }
        let secs = started.elapsed().as_secs_f64();
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        eprintln!(
            "built in {secs:.1} s ({:.0} passages/s in {BUILD_BATCH}-passage transactions), {} MiB",
            count as f64 / secs,
            size >> 20
        );
        drop(store);
        std::fs::write(&done, b"").unwrap();
    }
    let store = Store::open_with(&path, &options).unwrap();
    assert_eq!(store.snapshot().unwrap().passage_count().unwrap(), count);
    (store, count)
}

fn query(c: &mut Criterion) {
    let (store, count) = million();
    // Look-ups spread over the whole store, the same sequence every run.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let picks: Vec<u64> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % count
        })
        .collect();
    let mut i = 0usize;
    let mut next = move || {
        i = (i + 1) % picks.len();
        picks[i]
    };

    let mut g = c.benchmark_group(format!("query_{}k", count / 1000));
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    g.bench_function("by_container", |b| {
        b.iter(|| {
            let r = store
                .passages_by_container(&synthetic_container(next()))
                .unwrap();
            assert!(!r.is_empty());
            r
        })
    });
    g.bench_function("by_plate", |b| {
        b.iter(|| {
            let r = store.passages_by_plate(&synthetic_plate(next())).unwrap();
            assert!(!r.is_empty());
            r
        })
    });
    g.bench_function("by_lane_10min", |b| {
        b.iter(|| {
            let n = next();
            let lane = kakou_host::store::sample::SYNTHETIC_LANES[(n % 4) as usize];
            let from = BASE_MS + n as i64 * 3_000;
            store
                .passages_by_lane_between(lane, from, from + 600_000)
                .unwrap()
        })
    });
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("full_scan_container", |b| {
        b.iter(|| {
            let number = synthetic_container(next());
            let snap = store.snapshot().unwrap();
            let r = snap
                .passages_scan(|rec| rec.passage.containers().iter().any(|c| c.number == number))
                .unwrap();
            assert!(!r.is_empty());
            r
        })
    });
    g.finish();
}

criterion_group!(benches, write, writers, query);
criterion_main!(benches);
