//! Control orders (布控): a container, vehicle or driver under an order in force is stopped as
//! the order demands, with a critical alarm naming the order.

use crate::model::{Outcome, Passage, Severity, SubjectKind, Verdict};
use crate::proto::iso6346;
use crate::rules::Lookups;

use super::policy::outcome_name;
use super::vehicle::VehicleId;
use super::{Code, Policy, documents, driver};

/// No control order in force on a container of the passage.
pub const CONTAINER: Code = Code::new(
    "control.container",
    Outcome::Release,
    "no control order in force on the containers",
)
.always_on();
/// No control order in force on the vehicle (any of its plates).
pub const VEHICLE: Code = Code::new(
    "control.vehicle",
    Outcome::Release,
    "no control order in force on the vehicle",
)
.always_on();
/// No control order in force on the driver (driver id or IC card).
pub const DRIVER: Code = Code::new(
    "control.driver",
    Outcome::Release,
    "no control order in force on the driver",
)
.always_on();

/// Records [`CONTAINER`], [`VEHICLE`] and [`DRIVER`]. Each order in force raises the outcome to
/// at least its action (and to at least `check.control.<kind>`) with a critical alarm.
///
/// Subjects: containers read and those named by documents presented at the gate; the plate
/// read, the registered vehicle's plates and the plates of presented documents; the card read
/// and its driver's id. So in congestion mode, with reads missing, the documents still carry
/// the truck into the match.
pub fn control(passage: &Passage, host: &dyn Lookups, verdict: &mut Verdict) -> Result<(), String> {
    let (on_container, on_vehicle, on_driver) = (
        CONTAINER.policy(host)?,
        VEHICLE.policy(host)?,
        DRIVER.policy(host)?,
    );
    let presented = documents::presented(passage, host);

    let mut containers: Vec<String> = passage
        .containers()
        .iter()
        .map(|c| iso6346::normalize(&c.number))
        .collect();
    containers.extend(presented.iter().flat_map(|d| d.containers.iter().cloned()));

    let mut plates = VehicleId::read(passage, host).plates();
    plates.extend(presented.iter().filter_map(|d| d.plate.clone()));

    let (uid, found) = driver::read(passage, host);
    let mut drivers: Vec<String> = found.map(|d| d.id).into_iter().collect();
    drivers.extend(uid);

    // Each container is an entity of its own; a vehicle's plates and a driver's id and card
    // are names of one entity, reported together.
    if let Some(policy) = on_container {
        let mut seen: Vec<String> = Vec::new();
        for c in containers {
            if !seen.contains(&c) {
                seen.push(c.clone());
                match_orders(
                    passage,
                    host,
                    verdict,
                    policy,
                    SubjectKind::Container,
                    "container",
                    vec![c],
                );
            }
        }
    }
    if let Some(policy) = on_vehicle {
        match_orders(
            passage,
            host,
            verdict,
            policy,
            SubjectKind::Vehicle,
            "vehicle",
            plates,
        );
    }
    if let Some(policy) = on_driver {
        match_orders(
            passage,
            host,
            verdict,
            policy,
            SubjectKind::Driver,
            "driver",
            drivers,
        );
    }
    Ok(())
}

/// Matches the names of one entity against the orders in force: a failure per order found,
/// else one pass naming the entity. Nothing is recorded for an entity with no name.
fn match_orders(
    passage: &Passage,
    host: &dyn Lookups,
    verdict: &mut Verdict,
    policy: Policy,
    kind: SubjectKind,
    noun: &str,
    names: Vec<String>,
) {
    let mut unique: Vec<String> = Vec::new();
    for name in names {
        let name = name.trim().to_owned();
        if !name.is_empty() && !unique.contains(&name) {
            unique.push(name);
        }
    }
    let Some(first) = unique.first() else {
        return;
    };
    let mut seen_orders: Vec<String> = Vec::new();
    for subject in &unique {
        for order in host.control_orders(kind, subject) {
            // The host already filters by time; judging again keeps a stale look-up harmless.
            if !order.in_force(passage.now_ms) || seen_orders.contains(&order.id) {
                continue;
            }
            seen_orders.push(order.id.clone());
            let message = format!(
                "control order {} on {noun} {subject}: {} (demands {})",
                order.id,
                order.reason,
                outcome_name(order.action)
            );
            verdict.alarm(policy.code, Severity::Critical, message.clone());
            policy.fail_at_least(verdict, order.action, Some(subject), message);
        }
    }
    if seen_orders.is_empty() {
        policy.pass(
            verdict,
            Some(first),
            format!("no control order in force on {noun} {}", unique.join(" / ")),
        );
    }
}
