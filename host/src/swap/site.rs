//! What a site manifest edit changes, sorted into what a running daemon applies live and what
//! needs a restart.
//!
//! Owns the comparison only; the supervisor applies the live part. Live: the plugin policy
//! (`allow-dev-plugins`, `trusted-keys`: used by every later load), the rollback policy, the
//! site's rule set (`ruleset`, when the lanes are running), a device's `driver` or `config`
//! (a new decoder swapped in) and a device's equipment file (written to the store: it is
//! records, nothing runs from it). Everything else (site id, office, plugins folder, bus,
//! store, lanes and their settings, adding or removing a device, a device's transport, silence
//! timeout or byte rate) needs a restart, and is named.

use crate::config::{DeviceConfig, SiteManifest};

/// A device whose driver or settings changed: a new decoder is swapped in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeviceChange {
    /// Lane id.
    pub lane: String,
    /// The device as the edited manifest has it.
    pub config: DeviceConfig,
    /// What changed, for the report.
    pub what: String,
}

/// A site manifest edit, sorted.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SiteChanges {
    /// `allow-dev-plugins` or `trusted-keys` changed.
    pub policy: bool,
    /// `rollback-after` or `rollback-probation-calls` changed.
    pub rollback: bool,
    /// `ruleset` changed and can be applied live: the new name.
    pub ruleset: Option<String>,
    /// Devices to give a new decoder.
    pub devices: Vec<DeviceChange>,
    /// Devices whose equipment file changed: (lane, device, the edited file).
    pub equipment: Vec<(String, String, crate::config::Equipment)>,
    /// Changes that need a restart, described.
    pub restart: Vec<String>,
}

impl SiteChanges {
    /// Nothing changed.
    pub(crate) fn is_empty(&self) -> bool {
        *self == SiteChanges::default()
    }
}

/// Compares the running manifest with an edited one. `lanes_running`: the lanes were started
/// (with a rule set), so another rule set can replace theirs.
pub(crate) fn diff(old: &SiteManifest, new: &SiteManifest, lanes_running: bool) -> SiteChanges {
    let mut c = SiteChanges::default();
    let mut equipment = Vec::new();
    let mut restart = |what: String| c.restart.push(what);
    let (o, n) = (&old.site, &new.site);
    if o.id != n.id {
        restart(format!("site id {:?} -> {:?}", o.id, n.id));
    }
    if o.office != n.office {
        restart(format!("site office {:?} -> {:?}", o.office, n.office));
    }
    if o.plugins != n.plugins {
        restart(format!(
            "site plugins folder {} -> {}",
            o.plugins.display(),
            n.plugins.display()
        ));
    }
    if old.bus != new.bus {
        restart("[bus] settings".into());
    }
    if old.store != new.store {
        restart(format!(
            "[store] path {} -> {}",
            old.store.path.display(),
            new.store.path.display()
        ));
    }
    let mut ruleset = None;
    if o.ruleset != n.ruleset || old.ruleset_path() != new.ruleset_path() {
        match (&n.ruleset, lanes_running) {
            (Some(name), true) => ruleset = Some(name.clone()),
            (Some(name), false) => restart(format!(
                "site ruleset {name:?}: the lanes were started without a rule set"
            )),
            (None, _) => restart("site ruleset removed (the lanes would have none)".into()),
        }
    }
    for lane in &old.lanes {
        let Some(edited) = new.lane(&lane.id) else {
            restart(format!("lane {} removed", lane.id));
            continue;
        };
        let mut fields = Vec::new();
        if lane.category != edited.category {
            fields.push("category");
        }
        if lane.direction != edited.direction {
            fields.push("direction");
        }
        if lane.cargo != edited.cargo {
            fields.push("cargo");
        }
        if lane.station != edited.station {
            fields.push("station");
        }
        if lane.flow.barrier != edited.flow.barrier {
            fields.push("barrier");
        }
        if lane.flow.triggers != edited.flow.triggers {
            fields.push("trigger");
        }
        if lane.flow.required != edited.flow.required {
            fields.push("required");
        }
        if lane.flow.window != edited.flow.window {
            fields.push("window-ms");
        }
        if lane.flow.pulse != edited.flow.pulse {
            fields.push("pulse-ms");
        }
        if lane.flow.trigger_weight_kg != edited.flow.trigger_weight_kg {
            fields.push("trigger-weight-kg");
        }
        if !fields.is_empty() {
            restart(format!("lane {} {}", lane.id, fields.join(", ")));
        }
        for dev in &lane.devices {
            let Some(e) = edited.devices.iter().find(|d| d.id == dev.id) else {
                restart(format!("device {}/{} removed", lane.id, dev.id));
                continue;
            };
            let mut fields = Vec::new();
            if dev.transport != e.transport {
                fields.push("transport");
            }
            if dev.silence_timeout != e.silence_timeout {
                fields.push("silence-timeout-ms");
            }
            if dev.max_bytes_per_sec != e.max_bytes_per_sec {
                fields.push("max-bytes-per-sec");
            }
            if dev.equipment != e.equipment {
                equipment.push((lane.id.clone(), dev.id.clone(), e.equipment.clone()));
            }
            if !fields.is_empty() {
                restart(format!(
                    "device {}/{} {}",
                    lane.id,
                    dev.id,
                    fields.join(", ")
                ));
            }
            let what = match (dev.driver != e.driver, dev.settings != e.settings) {
                (true, _) => format!("driver {} -> {}", dev.driver, e.driver),
                (false, true) => "config".to_owned(),
                (false, false) => continue,
            };
            c.devices.push(DeviceChange {
                lane: lane.id.clone(),
                config: e.clone(),
                what,
            });
        }
        for dev in &edited.devices {
            if !lane.devices.iter().any(|d| d.id == dev.id) {
                restart(format!("device {}/{} added", lane.id, dev.id));
            }
        }
    }
    for lane in &new.lanes {
        if old.lane(&lane.id).is_none() {
            restart(format!("lane {} added", lane.id));
        }
    }
    c.ruleset = ruleset;
    c.equipment = equipment;
    c.policy = o.allow_dev_plugins != n.allow_dev_plugins || o.trusted_keys != n.trusted_keys;
    c.rollback = o.rollback != n.rollback;
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(dir: &std::path::Path, text: &str) -> SiteManifest {
        let path = dir.join("site.toml");
        std::fs::write(&path, text).unwrap();
        SiteManifest::load(&path).unwrap()
    }

    const BASE: &str = "[site]\nid = \"s\"\noffice = \"5201\"\nruleset = \"r.toml\"\n\n\
        [[lane]]\nid = \"L01\"\ncategory = \"A\"\ndirection = \"import\"\ndevices = [\n\
          { id = \"scale\", driver = \"xk3190\", transport = { serial = \"tty1\" }, config = { stable-count = 3 } },\n\
          { id = \"card\", driver = \"rdm6300\", transport = { serial = \"tty2\" } },\n]\n";

    #[test]
    fn live_and_restart_changes_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let old = manifest(dir.path(), BASE);
        assert!(diff(&old, &old.clone(), true).is_empty());

        let edited = BASE
            .replace("stable-count = 3", "stable-count = 5")
            .replace("driver = \"rdm6300\"", "driver = \"sm130\"")
            .replace(
                "ruleset = \"r.toml\"",
                "ruleset = \"q.toml\"\nrollback-after = 5",
            )
            .replace("tty2", "tty9")
            + "\n[[lane]]\nid = \"L02\"\ncategory = \"C\"\ndirection = \"export\"\n";
        let c = diff(&old, &manifest(dir.path(), &edited), true);
        assert_eq!(c.ruleset.as_deref(), Some("q.toml"));
        assert!(c.rollback && !c.policy);
        let devices: Vec<(String, String)> = c
            .devices
            .iter()
            .map(|d| (d.config.id.clone(), d.what.clone()))
            .collect();
        assert_eq!(
            devices,
            [
                ("scale".to_owned(), "config".to_owned()),
                ("card".to_owned(), "driver rdm6300 -> sm130".to_owned())
            ]
        );
        assert_eq!(c.restart, ["device L01/card transport", "lane L02 added"]);

        // Without running lanes a rule set cannot be swapped in.
        let c = diff(
            &old,
            &manifest(dir.path(), &BASE.replace("r.toml", "q.toml")),
            false,
        );
        assert_eq!(c.ruleset, None);
        assert_eq!(
            c.restart,
            ["site ruleset \"q.toml\": the lanes were started without a rule set"]
        );
    }
}
