//! Driver: IC card registered to an active driver of the vehicle's enterprise and, by site
//! rule, bound to this vehicle.

use crate::model::{Outcome, Passage, TruckDriver, Vehicle, Verdict};
use crate::rules::Lookups;

use super::vehicle::{VehicleId, carries, label};
use super::{Code, Param, Policy};

/// The IC card is registered to a driver whose registration is in force.
pub const CARD: Code = Code::new(
    "driver.card",
    Outcome::Inspect,
    "IC card registered to an active driver",
);
/// The driver works for the vehicle's transport enterprise.
pub const ENTERPRISE: Code = Code::new(
    "driver.enterprise",
    Outcome::Inspect,
    "driver employed by the vehicle's enterprise",
);
/// The driver is bound to this vehicle (only when the site requires it).
pub const VEHICLE_BINDING: Code = Code::new(
    "driver.vehicle-binding",
    Outcome::Inspect,
    "driver bound to this vehicle (when driver.require-vehicle-binding is true)",
);

/// Parameter: whether every driver must be bound to the vehicle they drive.
pub const REQUIRE_BINDING: Param = Param {
    key: "driver.require-vehicle-binding",
    default: "false",
    doc: "true: the driver's registration must list this vehicle (driver.vehicle-binding)",
};

/// Whether the driver's registration lists `v` (by its mainland or foreign plate).
///
/// An empty list means "any of the enterprise's vehicles" in the registration data; a rule that
/// requires binding wants the vehicle named, so an empty list is not a binding.
pub fn bound(d: &TruckDriver, v: &Vehicle) -> bool {
    d.vehicles.iter().any(|p| carries(v, p))
}

/// How a driver is named in messages.
pub fn driver_label(d: &TruckDriver) -> String {
    if d.name.is_empty() {
        format!("driver {}", d.id)
    } else {
        format!("driver {} ({})", d.name, d.id)
    }
}

/// The IC card in force (upper-case UID) and the driver registered to it.
pub fn read(passage: &Passage, host: &dyn Lookups) -> (Option<String>, Option<TruckDriver>) {
    let uid = passage
        .card()
        .map(|c| c.uid.trim().to_ascii_uppercase())
        .filter(|u| !u.is_empty());
    let driver = uid.as_deref().and_then(|u| host.driver_by_card(u));
    (uid, driver)
}

/// Records a driver–vehicle binding check under `policy`'s code: pass when `d` is bound to
/// `v`. Shared by [`VEHICLE_BINDING`] and regional rules (e.g. cross-border vehicles).
pub fn record_binding(policy: Policy, verdict: &mut Verdict, d: &TruckDriver, v: &Vehicle) {
    if bound(d, v) {
        policy.pass(
            verdict,
            Some(&d.card_uid),
            format!("{} is bound to vehicle {}", driver_label(d), label(v)),
        );
    } else if d.vehicles.is_empty() {
        policy.fail(
            verdict,
            Some(&d.card_uid),
            format!(
                "{} is not bound to any vehicle; vehicle {} requires a bound driver",
                driver_label(d),
                label(v)
            ),
        );
    } else {
        policy.fail(
            verdict,
            Some(&d.card_uid),
            format!(
                "{} is bound to {}, not to vehicle {}",
                driver_label(d),
                d.vehicles.join(", "),
                label(v)
            ),
        );
    }
}

/// Records [`CARD`], and with an identified vehicle [`ENTERPRISE`] and (by parameter)
/// [`VEHICLE_BINDING`].
pub fn driver(passage: &Passage, host: &dyn Lookups, verdict: &mut Verdict) -> Result<(), String> {
    let card = CARD.policy(host)?;
    let enterprise = ENTERPRISE.policy(host)?;
    let binding = if REQUIRE_BINDING.flag(host)? {
        VEHICLE_BINDING.policy(host)?
    } else {
        None
    };

    let (uid, found) = read(passage, host);
    let Some(uid) = uid else {
        if let Some(p) = card {
            p.unknown(
                verdict,
                None,
                "no IC card was read: the driver presents the card, or the operator keys it in",
            );
        }
        return Ok(());
    };
    let Some(d) = found else {
        if let Some(p) = card {
            p.fail(
                verdict,
                Some(&uid),
                format!("IC card {uid} is not registered to any driver"),
            );
        }
        return Ok(());
    };
    if let Some(p) = card {
        if d.active {
            p.pass(
                verdict,
                Some(&uid),
                format!(
                    "IC card {uid} belongs to {} of enterprise {}",
                    driver_label(&d),
                    d.enterprise
                ),
            );
        } else {
            p.fail(
                verdict,
                Some(&uid),
                format!(
                    "IC card {uid} belongs to {}, whose registration is not in force",
                    driver_label(&d)
                ),
            );
        }
    }
    let id = VehicleId::read(passage, host);
    let Some(v) = id.vehicle() else {
        return Ok(());
    };
    if let Some(p) = enterprise {
        if d.enterprise == v.enterprise {
            p.pass(
                verdict,
                Some(&uid),
                format!(
                    "{} works for {}, the enterprise of vehicle {}",
                    driver_label(&d),
                    d.enterprise,
                    label(v)
                ),
            );
        } else {
            p.fail(
                verdict,
                Some(&uid),
                format!(
                    "{} works for {}, but vehicle {} belongs to {}",
                    driver_label(&d),
                    d.enterprise,
                    label(v),
                    v.enterprise
                ),
            );
        }
    }
    if let Some(p) = binding {
        record_binding(p, verdict, &d, v);
    }
    Ok(())
}
