//! The plugin runtime against real components built from source: the two real plugins, and
//! hostile plugins whose every fault must cost one call and never the host.

#![allow(clippy::unwrap_used)] // test helpers fail loudly, like the tests

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kakou_host::plugin::health::is_fault;
use kakou_host::plugin::{
    CacheOutcome, CallErrorKind, LoadOptions, LoadStep, PreparedPassage, RulesAllocation,
    RulesPlugin, RulesPool, Runtime,
};
use kakou_host::sdk::harness::{Dataset, DatasetView};
use kakou_host::sdk::model::*;
use kakou_host::sdk::{Lookups, Rules};

const XK3190: &str = "plugins/drivers/xk3190";
const WEIGHT: &str = "plugins/rules/weight-check";
const HOSTILE_RULES: &str = "tests/plugins/hostile-rules";
const HOSTILE_DRIVER: &str = "tests/plugins/hostile-driver";

/// The DOMAIN.md example frame: +3260 kg.
const EXAMPLE: [u8; 12] = [
    0x02, 0x2B, 0x30, 0x30, 0x33, 0x32, 0x36, 0x30, 0x30, 0x31, 0x43, 0x03,
];

/// What a failed call's error must look like.
type Expect = Box<dyn Fn(&CallErrorKind) -> bool>;

fn dev() -> LoadOptions {
    LoadOptions::development()
}

fn runtime() -> Runtime {
    Runtime::new(None).expect("runtime")
}

fn rules(rt: &Runtime, rel: &str) -> RulesPlugin {
    rt.load_rules(&common::plugin(rel), &dev())
        .expect("load rules")
}

fn passage(id: &str) -> Passage {
    Passage {
        id: id.into(),
        now_ms: 1_790_000_000_000,
        ..Default::default()
    }
}

fn weights(out: &FeedOutput) -> Vec<(f64, bool)> {
    out.readings
        .iter()
        .filter_map(|r| match &r.value {
            ReadingValue::Weight(w) => Some((w.kg, w.stable)),
            _ => None,
        })
        .collect()
}

#[test]
fn xk3190_decodes_the_example_however_it_is_cut() {
    let rt = runtime();
    let driver = rt.load_driver(&common::plugin(XK3190), &dev()).unwrap();
    let mut d = driver.open(&[]).unwrap();
    let whole = d.feed(&EXAMPLE).unwrap();
    assert_eq!(weights(&whole), vec![(3260.0, false)]);

    for cut in 1..EXAMPLE.len() {
        let mut d = driver.open(&[]).unwrap();
        let mut out = d.feed(&EXAMPLE[..cut]).unwrap();
        assert!(out.readings.is_empty());
        out = d.feed(&EXAMPLE[cut..]).unwrap();
        assert_eq!(weights(&out), vec![(3260.0, false)], "cut at {cut}");
    }

    let mut d = driver.open(&[Setting::new("stable-count", "2")]).unwrap();
    let mut input = b"\x00\xffjunk+-".to_vec();
    input.extend(EXAMPLE);
    input.extend(EXAMPLE);
    let out = d.feed(&input).unwrap();
    assert_eq!(weights(&out), vec![(3260.0, false), (3260.0, true)]);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].bytes, 8);
}

#[test]
fn driver_settings_are_checked_by_the_driver() {
    let rt = runtime();
    let driver = rt.load_driver(&common::plugin(XK3190), &dev()).unwrap();
    let e = driver
        .open(&[Setting::new("baud", "9600")])
        .err()
        .expect("refused");
    assert_eq!(e.plugin, "xk3190@1.0.0");
    assert!(
        matches!(&e.kind, CallErrorKind::Refused(m) if m.starts_with("unknown setting `baud`")),
        "{e}"
    );
}

fn weight_data() -> Dataset {
    common::weight_fixture().1
}

#[test]
fn weight_check_in_the_sandbox_agrees_with_native() {
    let rt = runtime();
    let plugin = rules(&rt, WEIGHT);
    let data = Arc::new(weight_data());
    for gross in [37_200.0, 37_500.0, 37_700.0, 36_500.0] {
        let p = common::weighed(gross);
        let view = DatasetView::new(data.clone(), p.now_ms);
        let native = kakou_rules_weight_check::WeightCheck::evaluate(&p, &view).unwrap();
        let sandboxed = plugin.evaluate(&p, Some(Arc::new(view))).unwrap();
        assert_eq!(sandboxed, native, "gross {gross}");
    }
    let lookups: Arc<dyn Lookups + Send + Sync> = Arc::new(DatasetView::new(data, 0));
    assert_eq!(
        plugin
            .evaluate(&common::weighed(37_200.0), Some(lookups.clone()))
            .unwrap()
            .outcome,
        Outcome::Release
    );
    let v = plugin
        .evaluate(&common::weighed(37_900.0), Some(lookups))
        .unwrap();
    assert_eq!(v.outcome, Outcome::Inspect);
    assert_eq!(v.alarms[0].code, "weight.mismatch");
}

#[test]
fn hostile_rules_each_cost_one_call() {
    let rt = runtime();
    let hostile = rules(&rt, HOSTILE_RULES);
    let cases: Vec<(&str, Expect)> = vec![
        (
            "loop",
            Box::new(|k| matches!(k, CallErrorKind::OutOfFuel { fuel: 20_000_000 })),
        ),
        (
            "grow",
            Box::new(
                |k| matches!(k, CallErrorKind::MemoryLimit { limit, .. } if *limit == 16 << 20),
            ),
        ),
        (
            "trap",
            Box::new(
                |k| matches!(k, CallErrorKind::Trap(m) if m.contains("hostile plugin panics on purpose")),
            ),
        ),
        (
            "huge",
            Box::new(
                |k| matches!(k, CallErrorKind::OversizedResult { bytes, limit: 65_536 } if *bytes > 2_000_000),
            ),
        ),
        (
            "sneak",
            Box::new(|k| {
                *k == CallErrorKind::CapabilityDenied {
                    capability: "control-orders",
                    function: "controls.active",
                }
            }),
        ),
        (
            "refuse",
            Box::new(|k| *k == CallErrorKind::Refused("cannot decide: no data".into())),
        ),
    ];
    for (id, expected) in cases {
        let e = hostile.evaluate(&passage(id), None).expect_err(id);
        assert_eq!(e.plugin, "hostile-rules@0.1.0");
        assert!(expected(&e.kind), "{id}: unexpected {e}");
        // The next call runs on a fresh instance and works.
        let v = hostile.evaluate(&passage("ok"), None).unwrap();
        assert_eq!(v.outcome, Outcome::Release, "after {id}");
    }
}

#[test]
fn an_endless_loop_with_fuel_to_spare_hits_the_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::variant(HOSTILE_RULES, tmp.path(), |m| {
        m.replace("fuel = 20000000", "fuel = 1000000000000000")
            .replace("deadline-ms = 2000", "deadline-ms = 50")
    });
    let rt = runtime();
    let hostile = rt.load_rules(&dir, &dev()).unwrap();
    let e = hostile.evaluate(&passage("loop"), None).unwrap_err();
    assert_eq!(e.kind, CallErrorKind::Timeout { deadline_ms: 50 });
    assert!(
        e.to_string()
            .contains("did not return within its 50 ms deadline"),
        "{e}"
    );
    assert_eq!(
        hostile.evaluate(&passage("ok"), None).unwrap().outcome,
        Outcome::Release
    );
}

#[test]
fn the_host_keeps_serving_other_plugins_while_one_misbehaves() {
    let rt = runtime();
    let weight = rules(&rt, WEIGHT);
    let hostile = rules(&rt, HOSTILE_RULES);
    let data: Arc<dyn Lookups + Send + Sync> =
        Arc::new(DatasetView::new(Arc::new(weight_data()), 0));
    let worker = std::thread::spawn(move || {
        (0..100)
            .map(|_| {
                weight
                    .evaluate(&common::weighed(37_200.0), Some(data.clone()))
                    .map(|v| v.outcome)
            })
            .collect::<Vec<_>>()
    });
    for id in ["loop", "grow", "trap", "huge", "sneak"]
        .iter()
        .cycle()
        .take(15)
    {
        assert!(hostile.evaluate(&passage(id), None).is_err());
    }
    let outcomes = worker.join().expect("the worker thread did not panic");
    assert_eq!(outcomes.len(), 100);
    assert!(
        outcomes.iter().all(|o| o == &Ok(Outcome::Release)),
        "{outcomes:?}"
    );
}

#[test]
fn rules_see_the_passage_time_not_the_clock() {
    let rt = runtime();
    let hostile = rules(&rt, HOSTILE_RULES);
    let v = hostile.evaluate(&passage("clock"), None).unwrap();
    assert_eq!(v.checks[0].message, "1790000000000");
}

#[test]
fn parameters_reach_rules_through_the_declared_capability() {
    let rt = runtime();
    let hostile = rules(&rt, HOSTILE_RULES);
    let data = Dataset {
        parameters: vec![Setting::new("hostile.greeting", "你好")],
        ..Default::default()
    };
    let v = hostile
        .evaluate(
            &passage("ok"),
            Some(Arc::new(DatasetView::new(Arc::new(data), 0))),
        )
        .unwrap();
    assert_eq!(v.checks[0].message, "你好");
}

#[test]
fn hostile_driver_faults_are_contained_and_the_instance_rebuilt() {
    let rt = runtime();
    let driver = rt
        .load_driver(&common::plugin(HOSTILE_DRIVER), &dev())
        .unwrap();
    let mut d = driver.open(&[]).unwrap();
    let raw_kind = |out: &FeedOutput| match &out.readings[0].value {
        ReadingValue::Raw(r) => r.kind.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(raw_kind(&d.feed(b"a").unwrap()), "call-1");
    assert_eq!(raw_kind(&d.feed(b"b").unwrap()), "call-2");
    let faults: [(&[u8], Expect); 4] = [
        (
            b"trap",
            Box::new(
                |k| matches!(k, CallErrorKind::Trap(m) if m.contains("hostile driver panics on purpose")),
            ),
        ),
        (
            b"loop",
            Box::new(|k| matches!(k, CallErrorKind::OutOfFuel { .. })),
        ),
        (
            b"grow",
            Box::new(|k| matches!(k, CallErrorKind::MemoryLimit { .. })),
        ),
        (
            b"huge",
            Box::new(|k| matches!(k, CallErrorKind::OversizedResult { limit: 65_536, .. })),
        ),
    ];
    for (n, (input, expected)) in faults.iter().enumerate() {
        let e = d.feed(input).unwrap_err();
        assert_eq!(e.plugin, "hostile-driver@0.1.0");
        assert!(
            expected(&e.kind),
            "{}: unexpected {e}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(d.faults(), n as u64 + 1);
        // A fresh instance: its call counter starts again.
        assert_eq!(raw_kind(&d.feed(b"c").unwrap()), "call-1");
    }
}

fn refused_at(dir: &Path, options: &LoadOptions) -> (LoadStep, String) {
    let e = runtime().load(dir, options).err().expect("refused");
    (e.step(), e.to_string())
}

#[test]
fn a_plugin_asking_for_api_2_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::variant(HOSTILE_RULES, tmp.path(), |m| {
        m.replace("api = \"^1.0\"", "api = \"^2.0\"")
    });
    let (step, msg) = refused_at(&dir, &dev());
    assert_eq!(step, LoadStep::Api);
    assert!(
        msg.ends_with("the plugin needs kakou:plugin ^2.0, but this host provides 1.0.0"),
        "{msg}"
    );
}

#[test]
fn digests_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let good = common::plugin(XK3190);
    let digest = hex_digest(&good.join("plugin.wasm"));

    let sealed = common::variant(XK3190, &tmp.path().join("sealed"), |m| {
        format!("{m}\n[wasm]\nsha256 = \"{digest}\"\n")
    });
    let unsigned = LoadOptions {
        allow_unsigned: true,
        ..LoadOptions::default()
    };
    let loaded = runtime().load(&sealed, &unsigned).unwrap();
    assert_eq!(loaded.digest_hex(), digest);

    let wrong = "0".repeat(64);
    let tampered = common::variant(XK3190, &tmp.path().join("tampered"), |m| {
        format!("{m}\n[wasm]\nsha256 = \"{wrong}\"\n")
    });
    let (step, msg) = refused_at(&tampered, &dev());
    assert_eq!(step, LoadStep::Digest);
    assert!(
        msg.contains(&format!(
            "plugin.wasm has sha256 {digest}, but the manifest says {wrong}"
        )),
        "{msg}"
    );

    let (step, msg) = refused_at(&good, &LoadOptions::default());
    assert_eq!(step, LoadStep::Digest);
    assert!(msg.contains("no `wasm.sha256`"), "{msg}");
}

fn hex_digest(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(
        std::fs::read(path).expect("component"),
    ))
}

#[test]
fn a_component_of_the_wrong_kind_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::variant(HOSTILE_RULES, tmp.path(), |m| {
        m.replace("kind = \"rules\"", "kind = \"driver\"")
            .replace("[capabilities]\nimports = [\"parameters\"]\n", "")
    });
    let (step, msg) = refused_at(&dir, &dev());
    assert_eq!(step, LoadStep::Component, "{msg}");
    assert!(
        msg.contains(
            "must export kakou:plugin/decoding@1.0.0; it exports: kakou:plugin/evaluation@1.0.0"
        ),
        "{msg}"
    );
}

#[test]
fn a_manifest_that_misnames_the_component_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::variant(XK3190, tmp.path(), |m| {
        m.replace("version = \"1.0.0\"", "version = \"1.0.1\"")
    });
    let (step, msg) = refused_at(&dir, &dev());
    assert_eq!(step, LoadStep::Describe);
    assert!(
        msg.contains("describes itself as xk3190@1.0.0, but the manifest says xk3190@1.0.1"),
        "{msg}"
    );
}

#[test]
fn garbage_instead_of_a_component_is_refused_at_compile() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::variant(XK3190, tmp.path(), |m| m);
    std::fs::write(dir.join("plugin.wasm"), b"\0asm but not really").unwrap();
    let (step, msg) = refused_at(&dir, &dev());
    assert_eq!(step, LoadStep::Compile, "{msg}");
}

#[test]
fn compiled_artifacts_are_cached_and_a_corrupt_cache_is_recompiled() {
    let cache = tempfile::tempdir().unwrap();
    let dir = common::plugin(XK3190);
    let first = Runtime::new(Some(cache.path().to_path_buf()))
        .unwrap()
        .load(&dir, &dev())
        .unwrap();
    assert_eq!(first.cache_outcome(), CacheOutcome::Compiled);
    let second = Runtime::new(Some(cache.path().to_path_buf()))
        .unwrap()
        .load(&dir, &dev())
        .unwrap();
    assert_eq!(second.cache_outcome(), CacheOutcome::Hit);

    let files: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    std::fs::write(&files[0], b"not an artifact").unwrap();
    let third = Runtime::new(Some(cache.path().to_path_buf()))
        .unwrap()
        .load(&dir, &dev())
        .unwrap();
    assert_eq!(third.cache_outcome(), CacheOutcome::Compiled);
    let mut d = third.into_driver().unwrap().open(&[]).unwrap();
    assert_eq!(weights(&d.feed(&EXAMPLE).unwrap()), vec![(3260.0, false)]);
}

#[test]
fn every_rules_evaluation_runs_on_a_fresh_instance_even_after_a_fault() {
    let rt = runtime();
    let hostile = rules(&rt, HOSTILE_RULES);
    assert!(hostile.pooled());
    // `count` answers how many evaluations its instance has run.
    let count = || {
        hostile.evaluate(&passage("count"), None).unwrap().checks[0]
            .message
            .clone()
    };
    assert_eq!(count(), "1");
    let greeting: Arc<dyn Lookups + Send + Sync> = Arc::new(DatasetView::new(
        Arc::new(Dataset {
            parameters: vec![Setting::new("hostile.greeting", "你好")],
            ..Default::default()
        }),
        0,
    ));
    for id in [
        "loop", "grow", "trap", "huge", "sneak", "refuse", "ok", "count",
    ] {
        let _ = hostile.evaluate(&passage(id), None);
        assert_eq!(count(), "1", "after {id}");
        // And the fresh instance judges correctly.
        let v = hostile
            .evaluate(&passage("ok"), Some(greeting.clone()))
            .unwrap();
        assert_eq!(v.checks[0].message, "你好", "after {id}");
    }
}

#[test]
fn a_prepared_passage_is_judged_like_the_passage_by_every_plugin() {
    let rt = runtime();
    let weight = rules(&rt, WEIGHT);
    let hostile = rules(&rt, HOSTILE_RULES);
    let data: Arc<dyn Lookups + Send + Sync> =
        Arc::new(DatasetView::new(Arc::new(weight_data()), 0));
    let p = common::weighed(37_900.0);
    let prepared = PreparedPassage::new(&p);
    assert_eq!(prepared.now_ms(), p.now_ms);
    for plugin in [&weight, &hostile] {
        assert_eq!(
            plugin
                .evaluate_prepared(&prepared, Some(data.clone()))
                .unwrap(),
            plugin.evaluate(&p, Some(data.clone())).unwrap(),
            "{}",
            plugin.id()
        );
    }
}

#[test]
fn rules_run_alike_from_the_pool_on_demand_and_when_the_pool_cannot_be_created() {
    let pooled = runtime();
    assert_eq!(
        pooled.rules_allocation(),
        &RulesAllocation::Pooled(RulesPool::default())
    );
    let on_demand = Runtime::with_rules_pool(None, None).unwrap();
    assert!(matches!(
        on_demand.rules_allocation(),
        RulesAllocation::OnDemand { .. }
    ));
    // More address space than any process has: the runtime starts anyway, without the pool.
    let impossible = Runtime::with_rules_pool(
        None,
        Some(RulesPool {
            instances: u32::MAX,
            memory_mb: u32::MAX,
        }),
    )
    .unwrap();
    match impossible.rules_allocation() {
        RulesAllocation::OnDemand { reason } => {
            assert!(reason.contains("cannot be created"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let data: Arc<dyn Lookups + Send + Sync> = Arc::new(DatasetView::new(
        Arc::new(Dataset {
            parameters: vec![Setting::new("hostile.greeting", "你好")],
            ..Default::default()
        }),
        0,
    ));
    for (rt, in_pool) in [(&pooled, true), (&on_demand, false), (&impossible, false)] {
        let hostile = rules(rt, HOSTILE_RULES);
        assert_eq!(hostile.pooled(), in_pool);
        let v = hostile
            .evaluate(&passage("ok"), Some(data.clone()))
            .unwrap();
        assert_eq!(v.checks[0].message, "你好");
        let e = hostile.evaluate(&passage("loop"), None).unwrap_err();
        assert!(matches!(e.kind, CallErrorKind::OutOfFuel { .. }), "{e}");
    }

    // A rule set asking for more memory than a pool slot holds runs on demand.
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::variant(HOSTILE_RULES, tmp.path(), |m| {
        m.replace("memory-mb = 16", "memory-mb = 128")
    });
    let big = pooled.load_rules(&dir, &dev()).unwrap();
    assert!(!big.pooled());
    assert_eq!(
        big.evaluate(&passage("count"), None).unwrap().checks[0].message,
        "1"
    );
}

#[test]
fn evaluations_beyond_the_pool_wait_for_a_slot_rather_than_fail() {
    let rt = Runtime::with_rules_pool(
        None,
        Some(RulesPool {
            instances: 1,
            memory_mb: 64,
        }),
    )
    .unwrap();
    let hostile = rules(&rt, HOSTILE_RULES);
    assert!(hostile.pooled());
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let hostile = hostile.clone();
            std::thread::spawn(move || {
                (0..10)
                    .map(|_| hostile.evaluate(&passage("count"), None).map(|v| v.outcome))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for w in workers {
        let outcomes = w.join().expect("the worker did not panic");
        assert!(
            outcomes.iter().all(|o| o == &Ok(Outcome::Release)),
            "{outcomes:?}"
        );
    }
    assert_eq!(hostile.faults(), 0);
}

/// Look-ups whose parameter reads keep the calling thread waiting, off the CPU, for `wait` of
/// wall-clock time before answering: what a thread descheduled in the middle of a call looks
/// like to the call's deadline.
struct SlowParameters {
    wait: Duration,
}

impl Lookups for SlowParameters {
    fn vehicle(&self, _: &str) -> Option<Vehicle> {
        None
    }
    fn vehicle_by_tag(&self, _: &str) -> Option<Vehicle> {
        None
    }
    fn driver_by_card(&self, _: &str) -> Option<TruckDriver> {
        None
    }
    fn enterprise(&self, _: &str) -> Option<Enterprise> {
        None
    }
    fn station(&self, _: &str) -> Option<Station> {
        None
    }
    fn documents_by_container(&self, _: &str) -> Vec<Document> {
        Vec::new()
    }
    fn documents_by_vehicle(&self, _: &str) -> Vec<Document> {
        Vec::new()
    }
    fn document(&self, _: &str) -> Option<Document> {
        None
    }
    fn control_orders(&self, _: SubjectKind, _: &str) -> Vec<ControlOrder> {
        Vec::new()
    }
    fn parameter(&self, _: &str) -> Option<String> {
        // The condition is the wait itself: the thread must have been away for longer than
        // the deadline on the wall clock.
        let start = Instant::now();
        while let Some(left) = self.wait.checked_sub(start.elapsed()) {
            std::thread::sleep(left.max(Duration::from_millis(1)));
        }
        Some("patience".into())
    }
    fn vehicle_balance(&self, _: &str) -> i32 {
        0
    }
}

#[test]
fn time_a_rules_call_spends_off_the_cpu_is_not_charged_to_its_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::variant(HOSTILE_RULES, tmp.path(), |m| {
        m.replace("fuel = 20000000", "fuel = 1000000000000000")
            .replace("deadline-ms = 2000", "deadline-ms = 100")
    });
    let rt = runtime();
    let hostile = rt.load_rules(&dir, &dev()).unwrap();
    // Held three deadlines long in a host import, well within the backstop (20 deadlines).
    let slow = Arc::new(SlowParameters {
        wait: Duration::from_millis(300),
    });
    let v = hostile.evaluate(&passage("ok"), Some(slow)).unwrap();
    assert_eq!(v.checks[0].message, "patience");
    // Burning the CPU time, on the same deadline, is still stopped.
    let e = hostile.evaluate(&passage("loop"), None).unwrap_err();
    assert_eq!(e.kind, CallErrorKind::Timeout { deadline_ms: 100 });
    assert_eq!(hostile.faults(), 1);
}

#[test]
fn a_driver_asleep_in_the_host_is_not_charged_and_one_that_never_finishes_is_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::variant(HOSTILE_DRIVER, tmp.path(), |m| {
        m.replace("deadline-ms = 2000", "deadline-ms = 50")
    });
    let rt = runtime();
    let driver = rt.load_driver(&dir, &dev()).unwrap();
    let mut d = driver.open(&[]).unwrap();
    let raw_kind = |out: &FeedOutput| match &out.readings[0].value {
        ReadingValue::Raw(r) => r.kind.clone(),
        other => panic!("{other:?}"),
    };
    // Asleep (WASI sleeps in the host, off the CPU) three times its deadline: still answers.
    assert_eq!(raw_kind(&d.feed(b"nap 150").unwrap()), "call-1");
    assert_eq!(d.faults(), 0);
    // Asleep forever, 10 ms at a time: hardly any CPU time, stopped by the wall-clock
    // backstop at 20 times the deadline.
    let e = d.feed(b"naps").unwrap_err();
    assert_eq!(
        e.kind,
        CallErrorKind::Stalled {
            deadline_ms: 50,
            wall_ms: 1000
        }
    );
    assert!(e.to_string().contains("1000 ms of wall-clock time"), "{e}");
    assert_eq!(d.faults(), 1);
    assert_eq!(raw_kind(&d.feed(b"c").unwrap()), "call-1");
    // Spinning is stopped by the CPU-time deadline.
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::variant(HOSTILE_DRIVER, tmp.path(), |m| {
        m.replace("deadline-ms = 2000", "deadline-ms = 50")
            .replace("fuel = 20000000", "fuel = 1000000000000000")
    });
    let mut d = rt.load_driver(&dir, &dev()).unwrap().open(&[]).unwrap();
    let e = d.feed(b"loop").unwrap_err();
    assert_eq!(e.kind, CallErrorKind::Timeout { deadline_ms: 50 });
}

#[test]
fn a_fault_in_encode_is_a_typed_error_and_the_next_command_runs_on_a_fresh_instance() {
    let rt = runtime();
    let driver = rt
        .load_driver(&common::plugin(HOSTILE_DRIVER), &dev())
        .unwrap();
    let mut d = driver.open(&[]).unwrap();
    assert_eq!(d.encode(&Command::Open).unwrap(), b"open-1");

    // Declined: an answer, not a fault, and the instance is kept.
    let e = d.encode(&Command::Close).unwrap_err();
    assert_eq!(e.plugin, "hostile-driver@0.1.0");
    assert!(
        matches!(&e.kind, CallErrorKind::Refused(m) if m.contains("does not Close")),
        "{e}"
    );
    assert!(!is_fault(&e.kind));
    assert_eq!((d.faults(), driver.faults()), (0, 0));
    assert_eq!(d.encode(&Command::Open).unwrap(), b"open-3");

    // A trap: typed, counted, and the instance is rebuilt for the next command.
    let e = d.encode(&Command::Display("trap".into())).unwrap_err();
    assert!(
        matches!(&e.kind, CallErrorKind::Trap(m) if m.contains("panics on purpose in encode")),
        "{e}"
    );
    assert!(is_fault(&e.kind));
    assert_eq!((d.faults(), driver.faults()), (1, 1));
    assert_eq!(d.encode(&Command::Open).unwrap(), b"open-1");

    // An endless loop: out of fuel, likewise.
    let e = d.encode(&Command::Display("loop".into())).unwrap_err();
    assert!(matches!(e.kind, CallErrorKind::OutOfFuel { .. }), "{e}");
    assert_eq!((d.faults(), driver.faults()), (2, 2));
    assert_eq!(d.encode(&Command::Open).unwrap(), b"open-1");
}
