//! A site's rule set: the region's rules plugins composed, with its parameter defaults.
//!
//! Every plugin evaluates each passage; the most severe outcome wins, checks and alarms are
//! kept from all of them, and the passage records which plugins (and versions) decided. A
//! plugin that traps, times out or declines costs its own verdict only: the passage goes to
//! manual processing with an alarm naming it.
//!
//! Unit tests compose rules written in Rust (`RuleSet::native`, test builds only) through the
//! same composition, so the lane engine's tests need no wasm component.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use kakou_plugin_sdk::Lookups;
use kakou_plugin_sdk::model::{
    Check, CheckResult, ControlOrder, Document, Enterprise, Level, Outcome, Passage, Severity,
    Station, SubjectKind, TruckDriver, Vehicle, Verdict,
};

use crate::config::params::{DeclaredBy, ParamType, ParameterCatalog, ParameterSpec};
use crate::config::region::RuleSetManifest;
use crate::diag::SourceError;
use crate::plugin::{CallError, LoadError, LoadOptions, PreparedPassage, RulesPlugin, Runtime};
use crate::store::{PluginVersion, StoreLookups};

/// Why a rule set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RuleSetError {
    /// The rule set file is not where the site manifest points.
    #[error(
        "rule set file {} does not exist: a site's `ruleset = \"<name>\"` is looked up as \
         regions/<name>.toml beside the site manifest, then ../regions/<name>.toml (the \
         repository's manifests/regions); put the file there, or give `ruleset` as a path \
         ending in .toml",
        path.display()
    )]
    NotFound {
        /// Where it was looked for last.
        path: std::path::PathBuf,
    },
    /// The rule set file is wrong.
    #[error(transparent)]
    Manifest(#[from] SourceError),
    /// One of its plugins was refused.
    #[error("rule set {ruleset}: plugin {plugin}: {source}")]
    Plugin {
        /// The rule set.
        ruleset: String,
        /// The plugin folder name.
        plugin: String,
        /// Why.
        #[source]
        source: Box<LoadError>,
    },
}

/// A loaded rule set.
#[derive(Clone)]
pub struct RuleSet {
    manifest: Arc<RuleSetManifest>,
    plugins: Vec<RulesPlugin>,
    /// Rules written in Rust, judged after the plugins ([`RuleSet::native`]).
    #[cfg(test)]
    native: Vec<native::NativeRule>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("id", &self.manifest.id())
            .field("plugins", &self.decided_by())
            .finish()
    }
}

/// What a rule set decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The composed verdict.
    pub verdict: Verdict,
    /// The plugins that took part, as `name@version`.
    pub decided_by: Vec<PluginVersion>,
    /// `name@version` of the rule set.
    pub ruleset: String,
}

impl RuleSet {
    /// Loads the rule set file and each of its plugins from `plugins/rules/<name>`.
    pub fn load(
        runtime: &Runtime,
        path: &Path,
        plugins_dir: &Path,
        options: &LoadOptions,
    ) -> Result<Self, RuleSetError> {
        if !path.exists() {
            return Err(RuleSetError::NotFound {
                path: path.to_path_buf(),
            });
        }
        let manifest = RuleSetManifest::load(path)?;
        let undeclared = manifest.undeclared();
        if !undeclared.is_empty() {
            tracing::warn!(
                "rule set {}: parameters {} are given as bare defaults, so values set for them \
                 are only checked against the type their default suggests; declare them with \
                 {{ default = …, type = … }} ({})",
                manifest.id(),
                undeclared.join(", "),
                path.display()
            );
        }
        let mut plugins = Vec::new();
        for name in &manifest.plugins {
            let dir = plugins_dir.join("rules").join(name);
            let p = runtime
                .load_rules(&dir, options)
                .map_err(|e| RuleSetError::Plugin {
                    ruleset: manifest.id(),
                    plugin: name.clone(),
                    source: Box::new(e),
                })?;
            plugins.push(p);
        }
        Ok(RuleSet {
            manifest: Arc::new(manifest),
            plugins,
            #[cfg(test)]
            native: Vec::new(),
        })
    }

    /// The rule set file.
    pub fn manifest(&self) -> &RuleSetManifest {
        &self.manifest
    }

    /// `name@version`.
    pub fn id(&self) -> String {
        self.manifest.id()
    }

    /// Its plugins, in composition order (the hot swap watches their faults).
    pub fn plugins(&self) -> &[RulesPlugin] {
        &self.plugins
    }

    /// Its plugins as `name@version`.
    pub fn decided_by(&self) -> Vec<PluginVersion> {
        self.members().map(|m| m.version()).collect()
    }

    /// Everything that judges a passage, in composition order: the plugins (then, in test
    /// builds, the native rules).
    fn members(&self) -> impl Iterator<Item = Member<'_>> {
        self.plugins
            .iter()
            .map(Member::Plugin)
            .chain(self.native_members())
    }

    #[cfg(test)]
    fn native_members(&self) -> impl Iterator<Item = Member<'_>> {
        self.native.iter().map(Member::Native)
    }

    #[cfg(not(test))]
    fn native_members(&self) -> impl Iterator<Item = Member<'_>> {
        std::iter::empty()
    }

    /// Evaluates a passage with every plugin; the most severe outcome wins. The passage is
    /// converted for the plugins once, and each plugin judges it on a fresh instance.
    pub fn evaluate(&self, passage: &Passage, lookups: Arc<dyn Lookups + Send + Sync>) -> Decision {
        let prepared = PreparedPassage::new(passage);
        let mut verdict = Verdict::default();
        for m in self.members() {
            match m.judge(&prepared, passage, &lookups) {
                Ok(v) => {
                    verdict.outcome = verdict.outcome.max(v.outcome);
                    verdict.checks.extend(v.checks);
                    verdict.alarms.extend(v.alarms);
                }
                Err(e) => {
                    let name = m.version().name;
                    tracing::warn!(passage = %passage.id, "rules {name}: {e}");
                    verdict.check(
                        Check::new(
                            "rules.failed",
                            CheckResult::Unknown,
                            format!("rule set {name} gave no verdict: {e}"),
                        )
                        .about(name.clone()),
                        Outcome::Manual,
                    );
                    verdict.alarm(
                        "rules.failed",
                        Severity::Critical,
                        format!("rule set {name} gave no verdict on {}: {e}", passage.id),
                    );
                }
            }
        }
        Decision {
            verdict,
            decided_by: self.decided_by(),
            ruleset: self.id(),
        }
    }

    /// The site's parameter catalogue: this rule set's declarations and those of the lanes
    /// `lanes` (the site manifest's lane ids). Built from the rule set in force, so a swapped
    /// rule set brings its own parameters.
    pub fn catalog<S: AsRef<str>>(&self, lanes: &[S]) -> ParameterCatalog {
        site_catalog(&self.manifest, lanes)
    }

    /// Look-ups for one evaluation: the store as of `now_ms`, its parameters over this rule
    /// set's defaults.
    pub fn lookups(&self, store: StoreLookups) -> Layered {
        Layered {
            store,
            defaults: Arc::new(self.manifest.parameters.clone()),
            overrides: BTreeMap::new(),
            parameters_as_of: None,
        }
    }
}

/// One member of a rule set as the composition sees it: what it is called and its verdict.
enum Member<'a> {
    Plugin(&'a RulesPlugin),
    #[cfg(test)]
    Native(&'a native::NativeRule),
}

impl Member<'_> {
    fn version(&self) -> PluginVersion {
        match self {
            Member::Plugin(p) => {
                let m = p.manifest();
                PluginVersion::new(m.name.clone(), m.version.to_string())
            }
            #[cfg(test)]
            Member::Native(r) => r.version(),
        }
    }

    /// Plugins judge the converted passage; native rules (test builds) the passage itself.
    #[cfg_attr(not(test), allow(unused_variables))]
    fn judge(
        &self,
        prepared: &PreparedPassage,
        passage: &Passage,
        lookups: &Arc<dyn Lookups + Send + Sync>,
    ) -> Result<Verdict, CallError> {
        match self {
            Member::Plugin(p) => p.evaluate_prepared(prepared, Some(lookups.clone())),
            #[cfg(test)]
            Member::Native(r) => r.judge(passage, lookups.as_ref()),
        }
    }
}

/// The parameters the lane engine reads for lane `lane` on every decision: its direction and
/// cargo type (DOMAIN §2.7 items 2 and 3, over the site manifest's settings) and congestion
/// mode. They have no default here: without them the manifest's settings apply.
pub fn lane_parameters(lane: &str) -> [ParameterSpec; 3] {
    let by = || DeclaredBy::Lane(lane.to_owned());
    let one_of = |v: &[&str]| ParamType::Enumeration(v.iter().map(|s| (*s).to_owned()).collect());
    [
        ParameterSpec::new(
            format!("lane.{lane}.direction"),
            one_of(&["import", "export"]),
            by(),
        )
        .doc("the lane's direction, over the site manifest's"),
        ParameterSpec::new(
            format!("lane.{lane}.cargo"),
            one_of(&["container", "bulk", "any"]),
            by(),
        )
        .doc("the cargo the lane takes, over the site manifest's"),
        ParameterSpec::new(format!("lane.{lane}.congestion"), ParamType::Boolean, by()).doc(
            "true: congestion mode, trucks are released on valid documents and backfilled after",
        ),
    ]
}

/// The parameter catalogue of a site on rule set `ruleset` with lanes `lanes`, without loading
/// its plugins (the CLI checks a value before sending it with this).
pub fn site_catalog<S: AsRef<str>>(ruleset: &RuleSetManifest, lanes: &[S]) -> ParameterCatalog {
    let mut catalog = ParameterCatalog::new();
    for spec in ruleset.declarations.values() {
        catalog.declare(spec.clone());
    }
    for lane in lanes {
        for spec in lane_parameters(lane.as_ref()) {
            catalog.declare(spec);
        }
    }
    catalog
}

/// The store's look-ups with parameters layered: explicit overrides (a replay's `--set`), then
/// the site's parameter library (optionally as it stood at a past moment), then the rule
/// set's defaults.
pub struct Layered {
    store: StoreLookups,
    defaults: Arc<BTreeMap<String, String>>,
    /// Parameters forced for this evaluation.
    pub overrides: BTreeMap<String, String>,
    /// Read the parameter library as it stood at this unix ms.
    pub parameters_as_of: Option<i64>,
}

impl Layered {
    /// The first store read error met, if any (the lane then trusts no verdict).
    pub fn take_error(&self) -> Option<crate::store::StoreError> {
        self.store.take_error()
    }
}

impl Lookups for Layered {
    fn vehicle(&self, plate: &str) -> Option<Vehicle> {
        self.store.vehicle(plate)
    }
    fn vehicle_by_tag(&self, epc: &str) -> Option<Vehicle> {
        self.store.vehicle_by_tag(epc)
    }
    fn driver_by_card(&self, uid: &str) -> Option<TruckDriver> {
        self.store.driver_by_card(uid)
    }
    fn enterprise(&self, code: &str) -> Option<Enterprise> {
        self.store.enterprise(code)
    }
    fn station(&self, code: &str) -> Option<Station> {
        self.store.station(code)
    }
    fn documents_by_container(&self, number: &str) -> Vec<Document> {
        self.store.documents_by_container(number)
    }
    fn documents_by_vehicle(&self, plate: &str) -> Vec<Document> {
        self.store.documents_by_vehicle(plate)
    }
    fn document(&self, number: &str) -> Option<Document> {
        self.store.document(number)
    }
    fn control_orders(&self, kind: SubjectKind, subject: &str) -> Vec<ControlOrder> {
        self.store.control_orders(kind, subject)
    }
    fn parameter(&self, name: &str) -> Option<String> {
        if let Some(v) = self.overrides.get(name) {
            return Some(v.clone());
        }
        let stored = match self.parameters_as_of {
            Some(at) => self.store.parameter_as_of(name, at),
            None => self.store.parameter(name),
        };
        stored.or_else(|| self.defaults.get(name).cloned())
    }
    fn vehicle_balance(&self, plate: &str) -> i32 {
        self.store.vehicle_balance(plate)
    }
    fn log(&self, level: Level, message: &str) {
        self.store.log(level, message);
    }
}

#[cfg(test)]
pub(crate) mod native {
    //! Rules written in Rust, for unit tests that drive the lane engine with a rule set and no
    //! wasm component. They are judged by the same composition as plugins, and fail the way a
    //! plugin's call does: a declined passage (`Err`) as [`CallErrorKind::Refused`], a panic as
    //! [`CallErrorKind::Trap`], each costing that rule's verdict only.

    use std::collections::BTreeMap;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::Arc;

    use kakou_plugin_sdk::Lookups;
    use kakou_plugin_sdk::model::{Passage, Verdict};

    use super::RuleSet;
    use crate::config::region::RuleSetManifest;
    use crate::plugin::{CallError, CallErrorKind};
    use crate::store::PluginVersion;

    /// What a rule decides: the SDK's [`Rules::evaluate`](kakou_plugin_sdk::Rules::evaluate)
    /// as a closure.
    type Judge = dyn Fn(&Passage, &dyn Lookups) -> Result<Verdict, String> + Send + Sync;

    /// One rule written in Rust, named like a plugin (`name@test`).
    #[derive(Clone)]
    pub(crate) struct NativeRule {
        name: String,
        judge: Arc<Judge>,
    }

    impl NativeRule {
        /// A rule called `name` deciding with `judge`.
        pub(crate) fn new(
            name: &str,
            judge: impl Fn(&Passage, &dyn Lookups) -> Result<Verdict, String> + Send + Sync + 'static,
        ) -> Self {
            NativeRule {
                name: name.to_owned(),
                judge: Arc::new(judge),
            }
        }

        pub(super) fn version(&self) -> PluginVersion {
            PluginVersion::new(self.name.clone(), "test")
        }

        pub(super) fn judge(
            &self,
            passage: &Passage,
            lookups: &dyn Lookups,
        ) -> Result<Verdict, CallError> {
            let fail = |kind| CallError {
                plugin: format!("{}@test", self.name),
                kind,
            };
            match catch_unwind(AssertUnwindSafe(|| (self.judge)(passage, lookups))) {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(message)) => Err(fail(CallErrorKind::Refused(message))),
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic without a message".to_owned());
                    Err(fail(CallErrorKind::Trap(message)))
                }
            }
        }
    }

    impl RuleSet {
        /// A rule set `name@test` of `rules`, composed in order, with parameter defaults
        /// `parameters` (the store's parameter library overrides them, as for a region file).
        pub(crate) fn native(
            name: &str,
            parameters: &[(&str, &str)],
            rules: Vec<NativeRule>,
        ) -> RuleSet {
            let manifest = RuleSetManifest {
                path: format!("<native rule set {name}>").into(),
                name: name.to_owned(),
                version: "test".to_owned(),
                description: "rules written in Rust, for tests".to_owned(),
                plugins: rules.iter().map(|r| r.name.clone()).collect(),
                parameters: parameters
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
                declarations: BTreeMap::new(),
            };
            RuleSet {
                manifest: Arc::new(manifest),
                plugins: Vec::new(),
                native: rules,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::native::NativeRule;
    use super::*;
    use crate::store::Store;

    fn check(code: &str, result: CheckResult) -> Check {
        Check::new(code, result, "as the test says")
    }

    #[test]
    fn native_rules_are_composed_like_plugins() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("kakou.redb")).expect("open store");
        // Reads its parameter through the look-ups: the rule set's default.
        let limit = NativeRule::new("limit", |_: &Passage, host: &dyn Lookups| {
            let mut v = Verdict::default();
            let ok = host.parameter("test.limit").as_deref() == Some("5");
            let result = if ok {
                CheckResult::Pass
            } else {
                CheckResult::Fail
            };
            v.check(check("test.limit", result), Outcome::Refuse);
            Ok(v)
        });
        let strict = NativeRule::new("strict", |_: &Passage, _: &dyn Lookups| {
            let mut v = Verdict::default();
            v.check(check("test.strict", CheckResult::Fail), Outcome::Inspect);
            Ok(v)
        });
        let picky = NativeRule::new("picky", |_: &Passage, _: &dyn Lookups| {
            Err("cannot judge this".to_owned())
        });
        let rs = RuleSet::native("t", &[("test.limit", "5")], vec![limit, strict, picky]);
        assert_eq!(rs.id(), "t@test");
        let passage = Passage {
            id: "p-1".into(),
            ..Default::default()
        };
        let lookups = Arc::new(rs.lookups(StoreLookups::new(&store, 0).expect("look-ups")));
        let d = rs.evaluate(&passage, lookups);

        assert_eq!(d.verdict.outcome, Outcome::Inspect, "the most severe wins");
        let checks: Vec<(&str, CheckResult)> = d
            .verdict
            .checks
            .iter()
            .map(|c| (c.code.as_str(), c.result))
            .collect();
        assert_eq!(
            checks,
            [
                ("test.limit", CheckResult::Pass),
                ("test.strict", CheckResult::Fail),
                ("rules.failed", CheckResult::Unknown),
            ]
        );
        let failed = &d.verdict.checks[2];
        assert_eq!(failed.subject.as_deref(), Some("picky"));
        assert_eq!(
            failed.message,
            "rule set picky gave no verdict: plugin picky@test: refused: cannot judge this"
        );
        let alarms: Vec<&str> = d.verdict.alarms.iter().map(|a| a.code.as_str()).collect();
        assert_eq!(alarms, ["rules.failed"]);
        assert_eq!(
            d.decided_by,
            [
                PluginVersion::new("limit", "test"),
                PluginVersion::new("strict", "test"),
                PluginVersion::new("picky", "test"),
            ]
        );
        assert_eq!(d.ruleset, "t@test");
    }
}
