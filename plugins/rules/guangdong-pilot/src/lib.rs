//! The Guangdong–Hong Kong/Macau pilot's own rules (DOMAIN §2.7 vehicle backfill, §2.8, §5).
//!
//! Composed after `cn-baseline` and `weight-check` by the pilot rule set, so this plugin only
//! adds what the pilot asks beyond the national checks. It applies to two-plate vehicles (a
//! black 粤Z…港/澳 plate beside a Hong Kong or Macau plate, registration `two_plate`):
//! - `pilot.two-plate.plate`: the passage read, or had keyed in, the vehicle's mainland or
//!   foreign plate; a tag alone is not enough (the balance is kept per plate).
//! - `vehicle.customs-code`: the vehicle customs code is registered.
//! - `pilot.two-plate.balance`: entries and exits balance. The `history` capability gives
//!   entries minus exits so far (this passage not counted): entering, at most
//!   `pilot.two-plate.max-open-entries` − 1; leaving, at least 1.
//! - `pilot.cross-border.driver-binding`: the driver's card is bound to this vehicle.
//!
//! Vehicle identification, driver look-up and binding, outcomes and `check.<code>` parameters,
//! and congestion mode are the SDK's ([`kakou_plugin_sdk::checks`]), shared with the baseline.

use kakou_plugin_sdk::checks::{Code, Param, Policy, Rule, VehicleId, carries, driver};
use kakou_plugin_sdk::prelude::*;
use kakou_plugin_sdk::proto::plate;

/// The pilot rule set.
pub struct GuangdongPilot;

/// A two-plate vehicle's plate was read or keyed in.
pub const PLATE: Code = Code::new(
    "pilot.two-plate.plate",
    Outcome::Inspect,
    "two-plate vehicle read by its mainland or Hong Kong/Macau plate",
);
/// A two-plate vehicle's customs code is registered. Missing by default asks an operator to
/// backfill it (DOMAIN §2.7, vehicle backfill) rather than sending the truck to inspection.
pub const CUSTOMS_CODE: Code = Code::new(
    "vehicle.customs-code",
    Outcome::Manual,
    "two-plate vehicle's customs code registered",
);
/// A two-plate vehicle's entries and exits balance.
pub const BALANCE: Code = Code::new(
    "pilot.two-plate.balance",
    Outcome::Inspect,
    "two-plate vehicle's entries and exits balance",
);
/// A cross-border driver is bound to the vehicle.
pub const DRIVER_BINDING: Code = Code::new(
    "pilot.cross-border.driver-binding",
    Outcome::Inspect,
    "cross-border driver's card bound to the vehicle",
);

/// Parameter: how many entries a two-plate vehicle may have open (not yet matched by exits).
pub const MAX_OPEN: Param = Param {
    key: "pilot.two-plate.max-open-entries",
    default: "1",
    doc: "entries a two-plate vehicle may have open at once; entering with that many open fails pilot.two-plate.balance",
};

/// Two-plate vehicle rules.
pub const TWO_PLATE: Rule = Rule {
    run: two_plate,
    codes: &[PLATE, CUSTOMS_CODE, BALANCE],
    parameters: &[MAX_OPEN],
};

/// Cross-border driver binding.
pub const CROSS_BORDER_DRIVER: Rule = Rule {
    run: cross_border_driver,
    codes: &[DRIVER_BINDING],
    parameters: &[],
};

/// The pilot's rules, in order.
pub const RULES: &[Rule] = &[TWO_PLATE, CROSS_BORDER_DRIVER];

/// The identified vehicle when it is a registered two-plate vehicle. Anything else is the
/// baseline's to judge (unregistered, unidentified) or not the pilot's business.
fn two_plate_vehicle(passage: &Passage, host: &dyn Lookups) -> Option<(VehicleId, Vehicle)> {
    let id = VehicleId::read(passage, host);
    let v = id.vehicle().filter(|v| v.two_plate)?.clone();
    Some((id, v))
}

fn two_plate(passage: &Passage, host: &dyn Lookups, verdict: &mut Verdict) -> Result<(), String> {
    let max_open = MAX_OPEN.count(host, 1)?;
    let policies = (
        PLATE.policy(host)?,
        CUSTOMS_CODE.policy(host)?,
        BALANCE.policy(host)?,
    );
    let Some((id, v)) = two_plate_vehicle(passage, host) else {
        return Ok(());
    };
    let name = checks::vehicle::label(&v);
    if let Some(p) = policies.0 {
        plate_read(p, passage, verdict, &id, &v, &name);
    }
    if let Some(p) = policies.1 {
        match v.customs_code.as_deref().map(str::trim) {
            Some(code) if !code.is_empty() => p.pass(
                verdict,
                Some(code),
                format!("two-plate vehicle {name} has customs code {code}"),
            ),
            _ => p.fail(
                verdict,
                Some(&v.plate),
                format!(
                    "two-plate vehicle {name} has no vehicle customs code registered: backfill it"
                ),
            ),
        }
    }
    if let Some(p) = policies.2 {
        balance(p, passage, host, verdict, &v, &name, max_open);
    }
    Ok(())
}

fn plate_read(
    policy: Policy,
    passage: &Passage,
    verdict: &mut Verdict,
    id: &VehicleId,
    v: &Vehicle,
    name: &str,
) {
    match &id.plate {
        None => policy.missing_read(
            verdict,
            passage,
            "vehicle",
            &format!(
                "two-plate vehicle {name} was identified by its e-plate tag, but no plate was read"
            ),
        ),
        Some(p) if carries(v, p) => {
            // `id.plate` is normalised already.
            let which = if plate::normalize(&v.plate) == *p {
                "mainland"
            } else {
                "Hong Kong/Macau"
            };
            policy.pass(
                verdict,
                Some(p),
                format!("two-plate vehicle {name} read by its {which} plate {p}"),
            );
        }
        Some(p) => policy.fail(
            verdict,
            Some(p),
            format!("plate read {p} is neither plate of two-plate vehicle {name}"),
        ),
    }
}

fn balance(
    policy: Policy,
    passage: &Passage,
    host: &dyn Lookups,
    verdict: &mut Verdict,
    v: &Vehicle,
    name: &str,
    max_open: i32,
) {
    let open = host.vehicle_balance(&v.plate);
    let entries = |n: i32| format!("{n} open entr{}", if n == 1 { "y" } else { "ies" });
    let (ok, message) = match passage.lane.direction {
        Direction::Import if open < max_open => (
            true,
            format!(
                "entering: two-plate vehicle {name} has {}; {max_open} may be open",
                entries(open)
            ),
        ),
        Direction::Import => (
            false,
            format!(
                "entering: two-plate vehicle {name} already has {} without an exit, and at most {max_open} may be open: its exit must be recorded (or written off) first",
                entries(open)
            ),
        ),
        Direction::Export if open >= 1 => (
            true,
            format!(
                "leaving: two-plate vehicle {name} has {}; this exit closes one",
                entries(open)
            ),
        ),
        Direction::Export => (
            false,
            format!(
                "leaving: two-plate vehicle {name} has {} (balance {open}): no entry to match this exit",
                entries(open.max(0))
            ),
        ),
    };
    if ok {
        policy.pass(verdict, Some(&v.plate), message);
    } else {
        verdict.alarm(BALANCE.code, Severity::Warning, message.clone());
        policy.fail(verdict, Some(&v.plate), message);
    }
}

fn cross_border_driver(
    passage: &Passage,
    host: &dyn Lookups,
    verdict: &mut Verdict,
) -> Result<(), String> {
    let Some(policy) = DRIVER_BINDING.policy(host)? else {
        return Ok(());
    };
    let Some((_, v)) = two_plate_vehicle(passage, host) else {
        return Ok(());
    };
    let name = checks::vehicle::label(&v);
    match driver::read(passage, host) {
        (None, _) => policy.unknown(
            verdict,
            None,
            format!(
                "no IC card was read: cannot confirm the driver of cross-border vehicle {name}"
            ),
        ),
        (Some(uid), None) => policy.fail(
            verdict,
            Some(&uid),
            format!(
                "IC card {uid} is not registered, so it is not bound to cross-border vehicle {name}"
            ),
        ),
        (Some(_), Some(d)) => driver::record_binding(policy, verdict, &d, &v),
    }
    Ok(())
}

impl Rules for GuangdongPilot {
    fn describe() -> RulesDescription {
        checks::describe("guangdong-pilot", env!("CARGO_PKG_VERSION"), RULES)
    }

    fn evaluate(passage: &Passage, host: &dyn Lookups) -> Result<Verdict, String> {
        checks::run(RULES, passage, host)
    }
}

kakou_plugin_sdk::export_rules!(GuangdongPilot);
