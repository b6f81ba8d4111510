//! The region rule sets in `manifests/regions/`: their shape, that every parameter they set is
//! one their plugins read (and documented), and that composing their plugins with their
//! parameters decides the same passages differently for the stated reasons.

use std::path::{Path, PathBuf};

use kakou_plugin_sdk::Rules;
use kakou_plugin_sdk::harness::Dataset;
use kakou_plugin_sdk::model::*;
use kakou_rules_cn_baseline::CnBaseline;
use kakou_rules_guangdong_pilot::GuangdongPilot;
use kakou_rules_weight_check::WeightCheck;

const NOW: i64 = 1_795_780_812_000;
const HOUR: i64 = 3_600_000;

type Evaluate = fn(&Passage, &dyn kakou_plugin_sdk::Lookups) -> Result<Verdict, String>;

/// The rules plugins a region may name, by folder name.
fn plugin(name: &str) -> (Evaluate, RulesDescription) {
    match name {
        "cn-baseline" => (CnBaseline::evaluate, CnBaseline::describe()),
        "weight-check" => (WeightCheck::evaluate, WeightCheck::describe()),
        "guangdong-pilot" => (GuangdongPilot::evaluate, GuangdongPilot::describe()),
        other => panic!("unknown rules plugin {other:?}"),
    }
}

fn regions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../manifests/regions")
}

/// A region rule set as the host reads it.
struct Region {
    plugins: Vec<String>,
    parameters: Vec<Setting>,
}

fn region(name: &str) -> Region {
    let path = regions_dir().join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let t: toml::Table =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let keys: Vec<&String> = t.keys().collect();
    assert_eq!(keys, ["parameters", "ruleset"], "{name}: top-level tables");
    let rs = t["ruleset"].as_table().expect("[ruleset]");
    let mut rs_keys: Vec<&String> = rs.keys().collect();
    rs_keys.sort();
    assert_eq!(
        rs_keys,
        ["description", "name", "plugins", "version"],
        "{name}"
    );
    assert_eq!(rs["name"].as_str(), Some(name));
    assert!(rs["version"].as_str().is_some_and(|v| !v.is_empty()));
    assert!(rs["description"].as_str().is_some_and(|v| !v.is_empty()));
    let plugins = rs["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .map(|p| p.as_str().expect("plugin names are strings").to_owned())
        .collect();
    let parameters = t["parameters"]
        .as_table()
        .expect("[parameters]")
        .iter()
        .map(|(k, v)| {
            // A declaration `{ default = "…", type = … }`, or a bare default.
            let v = v
                .get("default")
                .unwrap_or(v)
                .as_str()
                .unwrap_or_else(|| panic!("{name}: parameter {k}'s default is not a string"));
            Setting::new(k.clone(), v)
        })
        .collect();
    Region {
        plugins,
        parameters,
    }
}

#[test]
fn regions_set_exactly_the_parameters_their_plugins_read_and_document_them() {
    let readme = std::fs::read_to_string(regions_dir().join("README.md")).expect("README.md");
    for (name, plugins) in [
        ("cn-baseline", vec!["cn-baseline", "weight-check"]),
        (
            "guangdong-pilot",
            vec!["cn-baseline", "weight-check", "guangdong-pilot"],
        ),
    ] {
        let r = region(name);
        assert_eq!(r.plugins, plugins);
        let mut read: Vec<String> = Vec::new();
        for p in &r.plugins {
            read.extend(plugin(p).1.parameters.into_iter().map(|s| s.key));
        }
        let mut set: Vec<String> = r.parameters.iter().map(|s| s.key.clone()).collect();
        read.sort();
        read.dedup();
        set.sort();
        assert_eq!(set, read, "{name}: parameters set vs read by its plugins");
        for key in &set {
            let documented = readme.contains(&format!("`{key}`"))
                || key
                    .strip_prefix("check.")
                    .is_some_and(|code| readme.contains(&format!("`{code}`")));
            assert!(documented, "{key} is not in manifests/regions/README.md");
        }
    }
}

/// The region's plugins, composed as the host composes them, with the region's parameters
/// under the site's data.
fn decide(name: &str, p: &Passage, site: &Dataset) -> Verdict {
    let r = region(name);
    let mut data = site.clone();
    // Later entries win in a Dataset: the region's defaults go first.
    let mut params = r.parameters;
    params.extend(site.parameters.iter().cloned());
    data.parameters = params;
    let mut verdict = Verdict::default();
    for name in &r.plugins {
        let v = (plugin(name).0)(p, &data.at(p.now_ms)).unwrap_or_else(|e| panic!("{name}: {e}"));
        verdict.merge(v);
    }
    verdict
}

fn world() -> Dataset {
    Dataset {
        enterprises: vec![Enterprise {
            code: "E4403001".into(),
            name: "Huayun Logistics".into(),
            status: EnterpriseStatus::Active,
        }],
        vehicles: vec![
            Vehicle {
                plate: "粤B12345".into(),
                tag_epc: Some("E2000017221101441890ABCD".into()),
                enterprise: "E4403001".into(),
                tare_kg: Some(15_000.0),
                active: true,
                ..Default::default()
            },
            Vehicle {
                plate: "粤Z1234港".into(),
                tag_epc: Some("E2000017221101441890BEEF".into()),
                enterprise: "E4403001".into(),
                tare_kg: Some(15_000.0),
                two_plate: true,
                foreign_plate: Some("KT8848".into()),
                customs_code: Some("HK5301234".into()),
                active: true,
            },
        ],
        drivers: vec![TruckDriver {
            id: "D1".into(),
            name: "Chen Wei".into(),
            card_uid: "04A1B2C3D4".into(),
            enterprise: "E4403001".into(),
            vehicles: vec!["粤B12345".into(), "粤Z1234港".into()],
            active: true,
        }],
        stations: vec![Station {
            code: "HP01".into(),
            name: "Huangpu container yard".into(),
            office: "5201".into(),
            active: true,
        }],
        documents: vec![Document {
            kind: DocumentKind::TransitRelease,
            number: "T1".into(),
            direction: Direction::Import,
            cargo: CargoKind::Container,
            station: "HP01".into(),
            containers: vec!["CSQU3054383".into()],
            declared_kg: Some(20_000.0),
            released_ms: Some(NOW - 10 * HOUR),
            destination_office: Some("5201".into()),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn obs(reading: impl Into<Reading>) -> Observation {
    Observation {
        device: "d".into(),
        reading: reading.into(),
        ..Default::default()
    }
}

/// A truck on an import container lane: plate and tag of `plate`, one 20 ft container, the
/// card of driver D1, and a stable gross weight of `gross` kg.
fn passage(plate: &str, tag: &str, gross: f64) -> Passage {
    Passage {
        office: "5201".into(),
        lane: Lane {
            id: "L01".into(),
            direction: Direction::Import,
            cargo: CargoKind::Container,
            station: "HP01".into(),
            ..Default::default()
        },
        now_ms: NOW,
        observations: vec![
            obs(Plate {
                text: plate.into(),
                confidence: 95,
                ..Default::default()
            }),
            obs(Tag {
                epc: tag.into(),
                ..Default::default()
            }),
            obs(Container {
                number: "CSQU3054383".into(),
                iso_type: Some("22G1".into()),
                ..Default::default()
            }),
            obs(Card {
                uid: "04A1B2C3D4".into(),
                ..Default::default()
            }),
            obs(Weight {
                kg: gross,
                stable: true,
                ..Default::default()
            }),
        ],
        ..Default::default()
    }
}

/// 15000 vehicle tare + 2200 container tare + 20000 declared.
const EXACT: f64 = 37_200.0;

fn truck() -> Passage {
    passage("粤B12345", "E2000017221101441890ABCD", EXACT)
}

/// Outcome on each region and the checks that failed on the pilot.
fn both(p: &Passage, d: &Dataset) -> (Outcome, Outcome, Vec<String>) {
    let base = decide("cn-baseline", p, d);
    let pilot = decide("guangdong-pilot", p, d);
    let failed = pilot
        .checks
        .iter()
        .filter(|c| c.result == CheckResult::Fail);
    let codes = failed.map(|c| c.code.clone()).collect();
    assert!(
        base.checks.iter().all(|c| c.result == CheckResult::Pass),
        "{base:#?}"
    );
    (base.outcome, pilot.outcome, codes)
}

#[test]
fn a_clean_truck_is_released_by_both() {
    let (base, pilot, failed) = both(&truck(), &world());
    assert_eq!(
        (base, pilot),
        (Outcome::Release, Outcome::Release),
        "{failed:?}"
    );
    let v = decide("guangdong-pilot", &truck(), &world());
    // The pilot's binding rule ran and passed; its two-plate rules had nothing to say.
    assert!(v.checks.iter().any(|c| c.code == "driver.vehicle-binding"));
    assert!(!v.checks.iter().any(|c| c.code.starts_with("pilot.")));
}

#[test]
fn the_pilot_weighs_tighter() {
    // +500 kg on 20000 declared: 2.5 %.
    let p = passage("粤B12345", "E2000017221101441890ABCD", EXACT + 500.0);
    let got = both(&p, &world());
    assert_eq!(
        got,
        (
            Outcome::Release,
            Outcome::Inspect,
            vec!["weight.tolerance".into()]
        )
    );
}

#[test]
fn the_pilot_allows_transits_less_time() {
    let mut d = world();
    d.documents[0].released_ms = Some(NOW - 30 * HOUR);
    let got = both(&truck(), &d);
    assert_eq!(
        got,
        (
            Outcome::Release,
            Outcome::Inspect,
            vec!["transit.time-limit".into()]
        )
    );
}

#[test]
fn the_pilot_binds_drivers_to_vehicles() {
    let mut d = world();
    d.drivers[0].vehicles.clear();
    let got = both(&truck(), &d);
    assert_eq!(
        got,
        (
            Outcome::Release,
            Outcome::Inspect,
            vec!["driver.vehicle-binding".into()]
        )
    );
}

#[test]
fn the_pilot_balances_two_plate_entries_and_exits() {
    let p = passage("粤Z1234港", "E2000017221101441890BEEF", EXACT);
    let mut d = world();
    assert_eq!(both(&p, &d), (Outcome::Release, Outcome::Release, vec![]));
    d.balances = vec![("粤Z1234港".into(), 1)];
    let got = both(&p, &d);
    assert_eq!(
        got,
        (
            Outcome::Release,
            Outcome::Inspect,
            vec!["pilot.two-plate.balance".into()]
        )
    );
}

#[test]
fn a_site_parameter_overrides_the_region_default() {
    let mut d = world();
    d.documents[0].released_ms = Some(NOW - 30 * HOUR);
    d.parameters
        .push(Setting::new("transit.time-limit-hours", "36"));
    let v = decide("guangdong-pilot", &truck(), &d);
    assert_eq!(v.outcome, Outcome::Release, "{v:#?}");
}
