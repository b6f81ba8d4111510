//! The manifests shipped in `manifests/` parse, and name drivers and protocols that exist.

#![allow(clippy::unwrap_used)] // test helpers fail loudly, like the tests

mod common;

use kakou_host::config::SiteManifest;
use kakou_host::sim::scenario::Scenario;

fn files(dir: &str) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(common::root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    out.sort();
    out
}

fn driver_exists(name: &str) -> bool {
    common::root()
        .join("plugins/drivers")
        .join(name)
        .join("plugin.toml")
        .exists()
}

#[test]
fn shipped_site_manifests_are_valid() {
    let sites = files("manifests/sites");
    assert!(!sites.is_empty());
    for path in sites {
        let m = SiteManifest::load(&path).unwrap_or_else(|e| panic!("{e}"));
        for lane in &m.lanes {
            for d in &lane.devices {
                assert!(
                    driver_exists(&d.driver),
                    "{}: no driver {}",
                    path.display(),
                    d.driver
                );
            }
        }
    }
}

#[test]
fn shipped_scenarios_are_valid() {
    let scenarios = files("manifests/sim");
    assert!(!scenarios.is_empty());
    for path in scenarios {
        let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            driver_exists(&s.protocol),
            "{}: no driver {}",
            path.display(),
            s.protocol
        );
        assert!(!s.steps.is_empty(), "{}", path.display());
    }
}
