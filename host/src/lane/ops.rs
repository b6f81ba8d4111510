//! Operator actions on a lane's passages, as they arrive on the bus
//! (`kakou/{site}/lane/{lane}/manual`) or from `kakou lane …`: key in missing readings, override
//! a decision, mark an inspection, backfill after a congested release, write off a two-plate
//! vehicle. Every one is recorded on the passage and in the audit log (who, when, what, before
//! and after).

use kakou_plugin_sdk::model::{ControlOrder, Direction, Reading};
use serde::{Deserialize, Serialize};

use crate::store::{AuditEntry, ControlOrderRecord, PassageRecord, Store, StoreError};

/// What an operator does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum OperatorAction {
    /// Key in or correct readings of a waiting passage (the lane's oldest waiting one when
    /// `passage` is absent); the passage is decided again and the barrier acts on the result.
    Complete {
        /// Passage id.
        #[serde(default)]
        passage: Option<String>,
        /// The readings keyed in.
        readings: Vec<Reading>,
    },
    /// Release regardless of the verdict (the reason is required and audited).
    Release {
        /// Passage id.
        #[serde(default)]
        passage: Option<String>,
        /// Why.
        reason: String,
    },
    /// Send to inspection.
    Inspect {
        /// Passage id.
        #[serde(default)]
        passage: Option<String>,
        /// Why.
        reason: String,
    },
    /// Turn the truck away.
    Refuse {
        /// Passage id.
        #[serde(default)]
        passage: Option<String>,
        /// Why.
        reason: String,
    },
    /// Mark an inspected passage; a passed inspection releases the truck.
    Inspected {
        /// Passage id.
        passage: String,
        /// The inspection found nothing wrong.
        passed: bool,
        /// Findings.
        #[serde(default)]
        note: Option<String>,
    },
    /// Add readings to a passage after the truck has gone (congestion mode): container and
    /// plate backfill. The passage is not decided again.
    Backfill {
        /// Passage id.
        passage: String,
        /// The readings.
        readings: Vec<Reading>,
    },
    /// The truck backed out: the passage is abandoned.
    Cancel {
        /// Passage id.
        #[serde(default)]
        passage: Option<String>,
        /// Why.
        reason: String,
    },
    /// Write off a two-plate vehicle's unbalanced entry or exit (it left or came in through a
    /// gate that did not record it): records the missing movement.
    WriteOff {
        /// The vehicle's registered plate.
        plate: String,
        /// The movement recorded: `import` (an entry) or `export` (an exit).
        direction: Direction,
        /// Why.
        reason: String,
    },
}

impl OperatorAction {
    /// The action's name in the audit log.
    pub fn name(&self) -> &'static str {
        match self {
            OperatorAction::Complete { .. } => "complete",
            OperatorAction::Release { .. } => "release",
            OperatorAction::Inspect { .. } => "inspect",
            OperatorAction::Refuse { .. } => "refuse",
            OperatorAction::Inspected { .. } => "inspected",
            OperatorAction::Backfill { .. } => "backfill",
            OperatorAction::Cancel { .. } => "cancel",
            OperatorAction::WriteOff { .. } => "write-off",
        }
    }
}

/// An operator's request (the body of a message on the lane's `manual` topic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorRequest {
    /// Who (an operator id).
    pub operator: String,
    /// What.
    #[serde(flatten)]
    pub action: OperatorAction,
    /// Where to publish the [`OperatorReply`], if the sender waits for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// What became of an operator's request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorReply {
    /// The request's envelope id.
    pub request: String,
    /// Done.
    pub ok: bool,
    /// What was done, or why not.
    pub message: String,
    /// The passage after the action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passage: Option<PassageRecord>,
}

/// A site-wide operator action: control orders (布控) and the parameter library. They take
/// effect at once: every lane reads them from the store on each decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum SiteAction {
    /// Put a control order on a container, vehicle or driver.
    ControlOrder {
        /// The order (id, subject, reason, demanded action, expiry).
        order: ControlOrder,
    },
    /// Revoke a control order.
    Revoke {
        /// Order id (not `id`: that names the message in its envelope).
        order_id: String,
        /// Why.
        reason: String,
    },
    /// Set a parameter (a new version; earlier ones are kept).
    SetParameter {
        /// Parameter name, e.g. `weight.tolerance-percent`.
        name: String,
        /// New value.
        value: String,
        /// Why.
        #[serde(default)]
        reason: Option<String>,
    },
}

/// A site action with who asked (the body of a message on `kakou/{site}/control-order` or
/// `kakou/{site}/parameter`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteRequest {
    /// Who (an operator id).
    pub operator: String,
    /// What.
    #[serde(flatten)]
    pub action: SiteAction,
    /// Where to publish the [`OperatorReply`], if the sender waits for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// Carries out a site action in one store transaction with its audit entry; returns what was
/// done.
pub fn apply_site_action(
    store: &Store,
    operator: &str,
    action: &SiteAction,
    now_ms: i64,
) -> Result<String, super::LaneError> {
    let message = store.write(|tx| match action {
        SiteAction::ControlOrder { order } => {
            let before = tx.read().control_order(&order.id)?;
            let record = ControlOrderRecord {
                order: order.clone(),
                issued_ms: now_ms,
                issued_by: operator.to_owned(),
                revoked_ms: None,
                revoked_by: None,
            };
            tx.put_control_order(&record)?;
            tx.audit(AuditEntry {
                who: operator.to_owned(),
                when_ms: now_ms,
                action: "control-order.create".into(),
                subject: order.id.clone(),
                before: before.and_then(|b| serde_json::to_value(b).ok()),
                after: serde_json::to_value(&record).ok(),
            })?;
            Ok::<_, StoreError>(format!(
                "control order {} on {:?} {} in force: {}",
                order.id, order.subject_kind, order.subject, order.reason
            ))
        }
        SiteAction::Revoke {
            order_id: id,
            reason,
        } => {
            if tx.revoke_control_order(id, operator, now_ms)? {
                Ok(format!("control order {id} revoked: {reason}"))
            } else {
                Ok(format!(
                    "control order {id}: nothing to revoke (unknown, or revoked before)"
                ))
            }
        }
        SiteAction::SetParameter {
            name,
            value,
            reason,
        } => {
            let before = tx.read().parameter(name)?;
            match tx.set_parameter(name, value, operator, now_ms)? {
                None => Ok(format!("parameter {name} is already {value:?}")),
                Some(version) => {
                    tx.audit(AuditEntry {
                        who: operator.to_owned(),
                        when_ms: now_ms,
                        action: "parameter.set".into(),
                        subject: name.clone(),
                        before: before.and_then(|b| serde_json::to_value(b).ok()),
                        after: Some(serde_json::json!({
                            "name": name, "version": version, "value": value, "reason": reason,
                        })),
                    })?;
                    Ok(format!("parameter {name} = {value:?} (version {version})"))
                }
            }
        }
    })?;
    Ok(message)
}
