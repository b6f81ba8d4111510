//! `kakou check --site FILE`: every check `kakou run` would make before it starts anything,
//! and the ones it can only make by loading the plugins, all reported at once.
//!
//! The manifest is validated (as `kakou run` does, and with every driver required to be
//! installed now), each device's driver goes through the normal load path and opens a decoder
//! with the device's settings, and the site's rule set is loaded with its plugins. No port is
//! bound, no device opened, no broker started or joined.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use crate::config::SiteManifest;
use crate::lane::RuleSet;
use crate::plugin::{DriverPlugin, Runtime};

/// Runs every check on the site manifest at `path`, prints each problem (stdout) and a
/// summary line, and fails when there is any problem.
pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let problems = check(path)?;
    let shown = path.display();
    if problems.is_empty() {
        println!("{shown}: ok");
        return Ok(ExitCode::SUCCESS);
    }
    for p in &problems {
        println!("{p}");
    }
    println!(
        "{shown}: {} problem{}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    Ok(ExitCode::FAILURE)
}

/// Every problem of the site manifest at `path`, each a line naming where it is.
pub fn check(path: &Path) -> anyhow::Result<Vec<String>> {
    let (manifest, found) = match SiteManifest::check(path) {
        Ok(m) => m,
        // Not readable as a manifest: nothing further can be checked.
        Err(e) => return Ok(e.problems.iter().map(ToString::to_string).collect()),
    };
    let mut problems: Vec<String> = found.iter().map(ToString::to_string).collect();
    let runtime = Runtime::new(Runtime::default_cache_dir())?;
    let options = manifest.site.load_options();
    let shown = path.display();

    // Each driver once, through the load path; each device's settings through `open`.
    let mut drivers: BTreeMap<&str, Option<DriverPlugin>> = BTreeMap::new();
    for lane in &manifest.lanes {
        for dev in &lane.devices {
            let dir = manifest.site.plugins.join("drivers").join(&dev.driver);
            if !dir.join(crate::plugin::manifest::FILE_NAME).exists() {
                // Reported with the manifest's problems, with its line.
                continue;
            }
            let plugin = drivers.entry(dev.driver.as_str()).or_insert_with(|| {
                match runtime.load_driver(&dir, &options) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        problems.push(format!(
                            "{shown}: device {}/{}: driver `{}` in {} is refused: {e}",
                            lane.id,
                            dev.id,
                            dev.driver,
                            dir.display()
                        ));
                        None
                    }
                }
            });
            if let Some(plugin) = plugin
                && let Err(e) = plugin.open(&dev.settings)
            {
                problems.push(format!(
                    "{shown}: device {}/{}: driver `{}` refuses the device's settings: {e}",
                    lane.id, dev.id, dev.driver
                ));
            }
        }
    }

    if let Some(ruleset) = manifest.ruleset_path()
        && let Err(e) = RuleSet::load(&runtime, &ruleset, &manifest.site.plugins, &options)
    {
        problems.push(format!(
            "{shown}: rule set {:?}: {e}",
            manifest.site.ruleset.as_deref().unwrap_or_default()
        ));
    }
    Ok(problems)
}
