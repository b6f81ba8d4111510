//! The national baseline of gate checks (DOMAIN §3), run on every passage.
//!
//! Every check is the SDK's ([`kakou_plugin_sdk::checks`]), so a region's rule set that adds
//! its own rules decides these the same way. Weight comparison is the `weight-check` plugin; a
//! region rule set (`manifests/regions/`) composes the plugins and the most severe outcome wins.
//!
//! Outcomes: a failed check sends the truck to inspection, missing data to manual processing,
//! a control order to at least what it demands; each legality criterion is a parameter
//! `check.<code>`. Parameters read (see `describe` for defaults):
//! - `container.accepted-documents`: release document kinds accepted as cover.
//! - `driver.require-vehicle-binding`: whether the driver must be bound to the vehicle.
//! - `transit.time-limit-hours`: transit limit when the release sets no deadline.
//! - `check.<code>` for every code: `release`, `manual`, `inspect`, `refuse` or `off`.

use kakou_plugin_sdk::checks::Rule;
use kakou_plugin_sdk::prelude::*;

/// The national baseline rule set.
pub struct CnBaseline;

/// The checks, in the order an officer reads them: the goods, the truck, its operator and
/// driver, where the goods go, how long they took, and whether customs wants them stopped.
pub const RULES: &[Rule] = &[
    checks::CONTAINER,
    checks::VEHICLE,
    checks::ENTERPRISE,
    checks::DRIVER,
    checks::STATION,
    checks::LANE,
    checks::TRANSIT,
    checks::CONTROL,
];

impl Rules for CnBaseline {
    fn describe() -> RulesDescription {
        checks::describe("cn-baseline", env!("CARGO_PKG_VERSION"), RULES)
    }

    fn evaluate(passage: &Passage, host: &dyn Lookups) -> Result<Verdict, String> {
        checks::run(RULES, passage, host)
    }
}

kakou_plugin_sdk::export_rules!(CnBaseline);
