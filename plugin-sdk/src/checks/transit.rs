//! Transit time limit (货物运输途中时限): at the destination office, the truck arrives within
//! the limit set at release.

use crate::model::{DocumentKind, Outcome, Passage, Severity, Verdict};
use crate::rules::Lookups;

use super::documents::in_play;
use super::{Code, Param};

/// The transit arrived within its time limit.
pub const TIME_LIMIT: Code = Code::new(
    "transit.time-limit",
    Outcome::Inspect,
    "transit arrives at its destination office within its time limit",
);

/// Parameter: the time limit when a transit release carries no deadline of its own.
pub const HOURS: Param = Param {
    key: "transit.time-limit-hours",
    default: "48",
    doc: "hours from release a transit may take when its release document sets no deadline",
};

const HOUR_MS: f64 = 3_600_000.0;

/// Hours, one decimal, for messages.
fn hours(ms: i64) -> String {
    format!("{:.1} h", ms as f64 / HOUR_MS)
}

/// Records [`TIME_LIMIT`] for each usable transit release whose destination office is this
/// passage's office. The deadline set at release binds; without one, release time plus
/// `transit.time-limit-hours`. Neither known: unknown.
pub fn transit(passage: &Passage, host: &dyn Lookups, verdict: &mut Verdict) -> Result<(), String> {
    let Some(policy) = TIME_LIMIT.policy(host)? else {
        return Ok(());
    };
    let limit_h = HOURS.positive(host)?;
    let office = passage.office.trim();
    let now = passage.now_ms;
    for d in in_play(passage, host)? {
        let here = d.destination_office.as_deref().map(str::trim) == Some(office);
        if d.kind != DocumentKind::TransitRelease || !here {
            continue;
        }
        let (deadline, basis) = match (d.deadline_ms, d.released_ms) {
            (Some(deadline), _) => (deadline, "the deadline set at release".to_owned()),
            (None, Some(released)) => (
                released.saturating_add((limit_h * HOUR_MS).round() as i64),
                format!("{limit_h} h from release"),
            ),
            (None, None) => {
                policy.unknown(
                    verdict,
                    Some(&d.number),
                    format!(
                        "transit {} carries neither a release time nor a deadline",
                        d.number
                    ),
                );
                continue;
            }
        };
        let since = d
            .released_ms
            .map(|r| format!(", {} after release", hours(now - r)))
            .unwrap_or_default();
        if now <= deadline {
            policy.pass(
                verdict,
                Some(&d.number),
                format!(
                    "transit {} arrived within {basis}{since} ({} to spare)",
                    d.number,
                    hours(deadline - now)
                ),
            );
        } else {
            let message = format!(
                "transit {} arrived {} past {basis}{since}",
                d.number,
                hours(now - deadline)
            );
            verdict.alarm(TIME_LIMIT.code, Severity::Warning, message.clone());
            policy.fail(verdict, Some(&d.number), message);
        }
    }
    Ok(())
}
