//! The customs checks of DOMAIN §3, written once for every rule set.
//!
//! Each check is a function over `(&Passage, &dyn Lookups, &mut Verdict)` that records one or
//! more [`Check`](crate::model::Check)s under stable reason codes and raises the verdict's
//! outcome. A rule set is a list of [`Rule`]s run by [`run`] and described by [`describe`]:
//!
//! ```
//! use kakou_plugin_sdk::checks::{self, Rule};
//! use kakou_plugin_sdk::harness::Dataset;
//! use kakou_plugin_sdk::model::{Outcome, Passage};
//!
//! const RULES: &[Rule] = &[checks::CONTAINER, checks::VEHICLE];
//! let verdict = checks::run(RULES, &Passage::default(), &Dataset::default().at(0)).unwrap();
//! // Nothing was read: an operator has to key the data in.
//! assert_eq!(verdict.outcome, Outcome::Manual);
//! assert_eq!(checks::describe("demo", "1.0.0", RULES).rule_codes[0], "container.number");
//! ```
//!
//! How results become outcomes, for every check alike:
//! - pass → release; fail → `inspect` unless the code says otherwise; unknown (data missing:
//!   a reading, a registration field, a release document not found at all) → `manual`.
//! - Legality criteria are parameters (DOMAIN §2.7 item 6): `check.<code>` = `release`
//!   (recorded only), `manual`, `inspect`, `refuse` or `off` (not run). An unknown result
//!   never leads to more than a failure would. Control orders cannot be switched off.
//! - Congestion mode (passage attribute `congestion-mode` = `true`): a missing container or
//!   plate read does not stop the truck; it is recorded as unknown with an info alarm
//!   `backfill.container` / `backfill.vehicle`, and the document, control-order and transit
//!   checks still decide.
//! - A parameter that cannot be read is the evaluation's error: the lane asks an operator
//!   instead of deciding on a misconfigured criterion.
//!
//! Weight comparison lives in the `weight-check` plugin; region rule sets compose plugins.

pub mod container;
pub mod control;
pub mod documents;
pub mod driver;
pub mod enterprise;
pub mod lane;
mod policy;
pub mod station;
pub mod transit;
pub mod vehicle;

#[cfg(test)]
mod tests;

pub use policy::{Code, Param, Policy, congestion, describe, measured_here, outcome_name, run};
pub use vehicle::{VehicleId, carries};

use crate::model::{Passage, Verdict};
use crate::rules::Lookups;

/// A check function: records its checks on the verdict, or fails on a bad parameter.
pub type CheckFn = fn(&Passage, &dyn Lookups, &mut Verdict) -> Result<(), String>;

/// A check function with the codes it records and the parameters it reads, so a rule set's
/// description is derived from what it runs.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Runs the check.
    pub run: CheckFn,
    /// Codes it records.
    pub codes: &'static [Code],
    /// Parameters it reads besides `check.<code>`.
    pub parameters: &'static [Param],
}

/// Container number and release cover (bulk cover on bulk lanes).
pub const CONTAINER: Rule = Rule {
    run: container::container,
    codes: &[
        container::NUMBER,
        container::DOCUMENT,
        container::BULK_DOCUMENT,
    ],
    parameters: &[documents::ACCEPTED],
};
/// Vehicle registration and e-plate tag binding.
pub const VEHICLE: Rule = Rule {
    run: vehicle::vehicle,
    codes: &[vehicle::REGISTERED, vehicle::TAG_BINDING],
    parameters: &[],
};
/// Transport enterprise standing.
pub const ENTERPRISE: Rule = Rule {
    run: enterprise::enterprise,
    codes: &[enterprise::STATUS],
    parameters: &[],
};
/// Driver card, employer and (by parameter) vehicle binding.
pub const DRIVER: Rule = Rule {
    run: driver::driver,
    codes: &[driver::CARD, driver::ENTERPRISE, driver::VEHICLE_BINDING],
    parameters: &[driver::REQUIRE_BINDING],
};
/// Document station registered and matching the gate.
pub const STATION: Rule = Rule {
    run: station::station,
    codes: &[station::REGISTERED, station::MATCH],
    parameters: &[],
};
/// Document direction and cargo against the lane.
pub const LANE: Rule = Rule {
    run: lane::lane,
    codes: &[lane::DIRECTION, lane::CARGO],
    parameters: &[],
};
/// Transit time limit at the destination office.
pub const TRANSIT: Rule = Rule {
    run: transit::transit,
    codes: &[transit::TIME_LIMIT],
    parameters: &[transit::HOURS],
};
/// Control orders on containers, vehicles and drivers.
pub const CONTROL: Rule = Rule {
    run: control::control,
    codes: &[control::CONTAINER, control::VEHICLE, control::DRIVER],
    parameters: &[],
};
