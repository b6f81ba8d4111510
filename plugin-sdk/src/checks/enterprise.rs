//! Transport enterprise: the vehicle's enterprise is registered and in good standing.

use crate::model::{EnterpriseStatus, Outcome, Passage, Verdict};
use crate::rules::Lookups;

use super::Code;
use super::vehicle::{VehicleId, label};

/// The vehicle's transport enterprise is registered and active (not suspended or revoked).
pub const STATUS: Code = Code::new(
    "enterprise.status",
    Outcome::Inspect,
    "vehicle's transport enterprise registered and active",
);

/// Records [`STATUS`] for the identified vehicle's enterprise. Skipped when the vehicle is not
/// identified: the vehicle check already says why.
pub fn enterprise(
    passage: &Passage,
    host: &dyn Lookups,
    verdict: &mut Verdict,
) -> Result<(), String> {
    let Some(policy) = STATUS.policy(host)? else {
        return Ok(());
    };
    let id = VehicleId::read(passage, host);
    let Some(v) = id.vehicle() else {
        return Ok(());
    };
    let code = v.enterprise.trim();
    if code.is_empty() {
        policy.fail(
            verdict,
            None,
            format!("vehicle {} names no transport enterprise", label(v)),
        );
        return Ok(());
    }
    match host.enterprise(code) {
        None => policy.fail(
            verdict,
            Some(code),
            format!(
                "transport enterprise {code} of vehicle {} is not registered",
                label(v)
            ),
        ),
        Some(e) => {
            let name = if e.name.is_empty() {
                code.to_owned()
            } else {
                format!("{} ({code})", e.name)
            };
            match e.status {
                EnterpriseStatus::Active => policy.pass(
                    verdict,
                    Some(code),
                    format!("transport enterprise {name} is registered and active"),
                ),
                EnterpriseStatus::Suspended => policy.fail(
                    verdict,
                    Some(code),
                    format!("transport enterprise {name} is suspended"),
                ),
                EnterpriseStatus::Revoked => policy.fail(
                    verdict,
                    Some(code),
                    format!("transport enterprise {name} has had its registration revoked"),
                ),
            }
        }
    }
    Ok(())
}
