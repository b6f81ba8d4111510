//! Lane engine benchmarks: the figures a customs gate operator asks about.
//!
//! - `engine` (criterion): the lane engine without devices, per passage — assembly of a
//!   truck's readings (`Assembler::offer`), the cn-baseline rule set (`RuleSet::evaluate`, both
//!   of its wasm plugins, fresh instances, store look-ups), each rules plugin alone, the
//!   durable store commit (passage + outbox message, one transaction), and all of it in turn.
//! - `latency`: the whole gate (daemon in this process, embedded broker, real wasm drivers on
//!   pseudo-terminals, store file with the sample data) with 1, 16 and 64 busy lanes: time from
//!   the last byte of the driver's card frame written into the card reader's pty to the
//!   barrier's "coil on" Modbus frame read back from the barrier's pty, p50/p90/p99; releases
//!   per second; and releases per CPU second of the daemon (this process minus the harness
//!   threads) and of daemon plus broker. See `lanes/gate.rs` for the truck cycle.
//! - `memory`: resident memory of `kakou demo --trucks 20` (the demo process and its embedded
//!   broker), sampled from `/proc` every 100 ms: peak (`VmHWM`) and steady (median `VmRSS`
//!   over the second half of the run). The `latency` runs report the same for the 64-lane
//!   gate.
//!
//! ```sh
//! cargo bench -p kakou-host --bench lanes              # everything (about 3½ minutes)
//! cargo bench -p kakou-host --bench lanes -- engine    # one part: engine | latency | memory
//! ```
//!
//! Settings (environment): `KAKOU_LANES` busy-lane counts (default `1,16,64`),
//! `KAKOU_LANES_SECS` measurement window per count (default 15), `KAKOU_LANES_GAP_MS` mean
//! pause between a lane's trucks, exponentially distributed so lanes arrive independently
//! (default 0: back to back; a huge value leaves the gate idle after one truck per lane),
//! `KAKOU_DEMO_TRUCKS` (default 20).
//! Plugins must be built (`cargo xtask plugins`); missing ones are built first.

#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop right there

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "lanes/fixture.rs"]
mod fixture;
#[path = "lanes/gate.rs"]
mod gate;
#[path = "lanes/procfs.rs"]
mod procfs;

use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput};
use kakou_host::plugin::LoadOptions;
use kakou_host::sdk::Lookups;
use kakou_host::store::StoreLookups;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The lane engine without devices, per passage, in criterion.
fn engine(c: &mut Criterion) {
    let e = fixture::Engine::new();
    println!(
        "engine: {} sample trucks released by cn-baseline: {}",
        e.trucks.len(),
        e.trucks
            .iter()
            .map(|t| t.plate.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    for r in &e.refused {
        println!("  not released, so not used: {r}");
    }
    // What the brief's plate-less flow (weight and card only) gets: no vehicle, no release.
    if let Some(t) = e.trucks.first() {
        let mut readings = t.readings();
        readings.retain(|(device, _)| *device != "rfid");
        let a = fixture::assemble(&mut e.assembler(), readings, fixture::now_ms());
        let d = e.judge(&a.passage);
        println!(
            "  {} with weight and card only (no tag): {:?}; {}",
            t.plate,
            d.verdict.outcome,
            d.verdict
                .checks
                .iter()
                .filter(|c| c.result != kakou_host::sdk::model::CheckResult::Pass)
                .map(|c| c.code.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let trucks = &e.trucks;
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1))
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));

    // Assembly: empty scale, settled load, tag, card → a passage.
    let mut assembler = e.assembler();
    let mut at = fixture::now_ms();
    let mut k = 0usize;
    g.bench_function("assemble", |b| {
        b.iter_batched(
            || {
                k += 1;
                at += 10_000;
                (trucks[k % trucks.len()].readings(), at)
            },
            |(readings, at)| black_box(fixture::assemble(&mut assembler, readings, at)),
            BatchSize::SmallInput,
        )
    });

    // The rule set on assembled passages (one per truck).
    let mut assembler = e.assembler();
    let passages: Vec<_> = trucks
        .iter()
        .map(|t| {
            at += 10_000;
            fixture::assemble(&mut assembler, t.readings(), at).passage
        })
        .collect();
    g.bench_function("rules/cn-baseline-ruleset", |b| {
        b.iter(|| {
            k += 1;
            black_box(e.judge(&passages[k % passages.len()]))
        })
    });
    for name in ["cn-baseline", "weight-check"] {
        let plugin = e
            .runtime
            .load_rules(
                &fixture::plugins_dir().join("rules").join(name),
                &LoadOptions::development(),
            )
            .unwrap();
        g.bench_function(format!("rules/{name}"), |b| {
            b.iter(|| {
                k += 1;
                let p = &passages[k % passages.len()];
                let lookups: Arc<dyn Lookups + Send + Sync> = Arc::new(
                    e.ruleset
                        .lookups(StoreLookups::new(&e.store, p.now_ms).unwrap()),
                );
                black_box(plugin.evaluate(p, Some(lookups)).unwrap())
            })
        });
    }

    // The durable commit: passage and outbox message in one transaction.
    let decision = e.judge(&passages[0]);
    g.bench_function("store-commit", |b| {
        b.iter_batched(
            || {
                k += 1;
                let mut p = passages[k % passages.len()].clone();
                p.id = format!("{}-c{k}", p.id);
                (p, decision.clone())
            },
            |(p, d)| e.commit(p, d),
            BatchSize::SmallInput,
        )
    });

    // All of it: what a lane does per truck, minus devices, bus and barrier.
    let mut assembler = e.assembler();
    g.bench_function("passage", |b| {
        b.iter_batched(
            || {
                k += 1;
                at += 10_000;
                (trucks[k % trucks.len()].readings(), at)
            },
            |(readings, at)| {
                let a = fixture::assemble(&mut assembler, readings, at);
                let d = e.judge(&a.passage);
                e.commit(a.passage, d);
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The whole gate at each busy-lane count.
fn latency() {
    fixture::ensure_plugins();
    let trucks = fixture::Engine::new().trucks;
    let counts: Vec<usize> = std::env::var("KAKOU_LANES")
        .unwrap_or_else(|_| "1,16,64".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let secs: u64 = env_or("KAKOU_LANES_SECS", 15);
    let gap = Duration::from_millis(env_or("KAKOU_LANES_GAP_MS", 0));
    let mut reports = Vec::new();
    for &lanes in &counts {
        let r = gate::run(
            &gate::Options {
                lanes,
                warmup: Duration::from_secs(60),
                measure: Duration::from_secs(secs),
                gap,
            },
            &trucks,
        );
        println!(
            "lanes {lanes}: {} releases in {:.1} s, p50 {:.2} ms, p99 {:.2} ms",
            r.latencies.len(),
            r.window.as_secs_f64(),
            ms(r.quantile(0.5)),
            ms(r.quantile(0.99))
        );
        reports.push(r);
    }
    println!(
        "\ndecision latency: last byte of the card frame into its pty → barrier \"coil on\" frame \
         read from its pty\n({} trucks of the sample data, cn-baseline, bulk import lanes, \
         embedded broker, {}; window {secs} s per row)\n",
        trucks.len(),
        if gap.is_zero() {
            "trucks back to back".to_owned()
        } else {
            format!(
                "random pauses of mean {} ms between a lane's trucks",
                gap.as_millis()
            )
        }
    );
    println!(
        "| lanes | releases | per s | p50 ms | p90 ms | p99 ms | max ms | missed | resent | stored (released) | reading on bus p50 / p99 ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &reports {
        println!(
            "| {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} ({}) | {:.1} / {:.1} |",
            r.lanes,
            r.latencies.len(),
            r.per_sec(),
            ms(r.quantile(0.5)),
            ms(r.quantile(0.9)),
            ms(r.quantile(0.99)),
            ms(r.latencies.last().copied().unwrap_or_default()),
            r.missed,
            r.resent,
            r.recorded,
            r.released,
            ms(gate::quantile(&r.published, 0.5)),
            ms(gate::quantile(&r.published, 0.99)),
        );
    }
    println!(
        "\nCPU in the window (seconds of CPU per second of wall time) and passages per CPU second\n"
    );
    println!(
        "| lanes | daemon CPU | broker CPU | harness CPU | passages / daemon CPU s | passages / (daemon + broker) CPU s |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for r in &reports {
        let w = r.window.as_secs_f64();
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} |",
            r.lanes,
            r.daemon_cpu / w,
            r.broker_cpu / w,
            r.harness_cpu / w,
            r.per_daemon_cpu_sec(),
            r.per_cpu_sec_with_broker(),
        );
    }
    println!(
        "\nresident memory (this process = daemon + harness; the broker is a child process; \
         rows after the first include what earlier rows left in this process)\n"
    );
    println!("| lanes | process steady MiB | process peak MiB | broker steady MiB |");
    println!("|---:|---:|---:|---:|");
    for r in &reports {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} |",
            r.lanes,
            r.rss_steady_kb as f64 / 1024.0,
            r.rss_peak_kb as f64 / 1024.0,
            r.broker_rss_kb as f64 / 1024.0,
        );
    }
    for r in &reports {
        if r.warmed < r.lanes {
            println!(
                "note: at {} lanes only {} lanes had released a truck when the window opened",
                r.lanes, r.warmed
            );
        }
    }
}

/// `kakou demo --trucks N`: resident memory of the demo process and its broker.
fn memory() {
    fixture::ensure_plugins();
    let trucks: u32 = env_or("KAKOU_DEMO_TRUCKS", 20);
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kakou"))
        .args(["demo", "--trucks", &trucks.to_string(), "--dir"])
        .arg(dir.path())
        .current_dir(common::root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    // (seconds since start, demo VmRSS, broker VmRSS), KiB
    let mut samples: Vec<(f64, u64, u64)> = Vec::new();
    let (mut hwm, mut broker_hwm) = (0u64, 0u64);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        let (rss, h) = procfs::rss_kb(pid);
        let broker: Vec<(u64, u64)> = procfs::children(pid)
            .into_iter()
            .map(procfs::rss_kb)
            .collect();
        hwm = hwm.max(h);
        broker_hwm = broker_hwm.max(broker.iter().map(|b| b.1).sum());
        if rss > 0 {
            samples.push((
                start.elapsed().as_secs_f64(),
                rss,
                broker.iter().map(|b| b.0).sum(),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let wall = start.elapsed().as_secs_f64();
    let lines = lines.join().unwrap();
    let half = samples.len() / 2;
    let mut rss: Vec<u64> = samples[half..].iter().map(|s| s.1).collect();
    let mut broker: Vec<u64> = samples[half..].iter().map(|s| s.2).collect();
    let median = |v: &mut Vec<u64>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0) as f64 / 1024.0
    };
    println!(
        "\nkakou demo --trucks {trucks}: {status} after {wall:.0} s, {} samples",
        samples.len()
    );
    for l in lines.iter().filter(|l| l.trim_start().starts_with("L0")) {
        println!("  {}", l.trim());
    }
    println!("\n| process | steady RSS MiB | peak RSS (VmHWM) MiB |");
    println!("|---|---:|---:|");
    println!(
        "| kakou demo (daemon, simulators, console) | {:.1} | {:.1} |",
        median(&mut rss),
        hwm as f64 / 1024.0
    );
    println!(
        "| embedded broker (kakou broker) | {:.1} | {:.1} |",
        median(&mut broker),
        broker_hwm as f64 / 1024.0
    );
}

fn main() {
    // The parts named on the command line (`-- engine`), or all; flags are cargo's.
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |part: &str| wanted.is_empty() || wanted.iter().any(|w| part.contains(w.as_str()));
    if run("engine") {
        let mut c = Criterion::default().configure_from_args();
        engine(&mut c);
        c.final_summary();
    }
    if run("latency") {
        latency();
    }
    if run("memory") {
        memory();
    }
}
