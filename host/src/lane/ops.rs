//! Operator actions on a lane's passages, as they arrive on the bus
//! (`kakou/{site}/lane/{lane}/manual`) or from `kakou lane …`: key in missing readings, override
//! a decision, mark an inspection, backfill after a congested release, write off a two-plate
//! vehicle. Every one is recorded on the passage and in the audit log (who, when, what, before
//! and after).
//!
//! Also the site-wide actions (control orders, parameters: [`SiteAction`]): checked before
//! anything is written, then carried out once per request id with their answer
//! ([`answer_site_request`]).

use kakou_plugin_sdk::model::{
    ControlOrder, Direction, Outcome, Reading, ReadingValue, SubjectKind,
};
use serde::{Deserialize, Serialize};

use crate::config::params::{Normalised, ParameterCatalog};
use crate::store::platform::{self, IdentifierError};
use crate::store::{
    AuditEntry, ControlOrderRecord, PassageRecord, Store, StoreError, StoredReply, WriteTx, Writer,
};

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

/// The heaviest gross weight an operator may key in: above any weighbridge's range (road
/// trucks stay under 49 t in China; bridges weigh up to 150 t), so a larger figure is a typing
/// slip (grams, an extra digit), not a truck.
pub const MAX_KEYED_KG: f64 = 150_000.0;

/// Why readings keyed in by an operator (`complete`, `backfill`) are refused. The lane would
/// otherwise take them as a misread and ask again, without saying why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeyedError {
    /// The container number fails ISO 6346.
    #[error(
        "container number {given:?}: {source}; read the number off the box again (a wrong \
         check digit usually means another character was misread)"
    )]
    Container {
        /// As keyed.
        given: String,
        /// Why.
        #[source]
        source: IdentifierError,
    },
    /// The plate is not a mainland plate.
    #[error("plate {given:?}: {source}")]
    Plate {
        /// As keyed.
        given: String,
        /// Why.
        #[source]
        source: IdentifierError,
    },
    /// The card UID is empty.
    #[error(
        "the card UID is empty: key in the UID the reader shows or that is printed on the card"
    )]
    EmptyCard,
    /// The card UID is not one.
    #[error("card {given:?}: {source}")]
    Card {
        /// As keyed.
        given: String,
        /// Why.
        #[source]
        source: IdentifierError,
    },
    /// The e-plate tag is not an EPC.
    #[error("tag {given:?}: {source}")]
    Tag {
        /// As keyed.
        given: String,
        /// Why.
        #[source]
        source: IdentifierError,
    },
    /// A weight no truck on a weighbridge has.
    #[error(
        "weight {kg} kg: expected a gross weight above 0 and at most {MAX_KEYED_KG} kg, in kg \
         (not tonnes)"
    )]
    Weight {
        /// As keyed.
        kg: f64,
    },
    /// A presented document without its kind or number.
    #[error(
        "document {kind:?}:{number:?}: both the kind and the number are needed, e.g. transit-release:T520120261127000001"
    )]
    Document {
        /// Kind as keyed.
        kind: String,
        /// Number as keyed.
        number: String,
    },
}

/// Checks readings an operator keys in, before they reach a passage: a container number's
/// check digit, a plate, a card UID, an EPC, a gross weight, a document's kind and number.
/// Other kinds of reading are the devices' and pass unchanged. Pure: the lane and the CLI call
/// it on the same readings and refuse for the same reason.
pub fn validate_keyed(readings: &[Reading]) -> Result<(), KeyedError> {
    for r in readings {
        match &r.value {
            ReadingValue::Container(c) => {
                platform::container_number(&c.number).map_err(|source| KeyedError::Container {
                    given: c.number.clone(),
                    source,
                })?;
            }
            ReadingValue::Plate(p) => {
                platform::mainland_plate(&p.text).map_err(|source| KeyedError::Plate {
                    given: p.text.clone(),
                    source,
                })?;
            }
            ReadingValue::Card(c) if c.uid.trim().is_empty() => return Err(KeyedError::EmptyCard),
            ReadingValue::Card(c) => {
                platform::card_uid(&c.uid).map_err(|source| KeyedError::Card {
                    given: c.uid.clone(),
                    source,
                })?;
            }
            ReadingValue::Tag(t) => {
                platform::epc(&t.epc).map_err(|source| KeyedError::Tag {
                    given: t.epc.clone(),
                    source,
                })?;
            }
            ReadingValue::Weight(w) => {
                let absurd = |kg: f64| !(kg.is_finite() && kg > 0.0 && kg <= MAX_KEYED_KG);
                if absurd(w.kg) {
                    return Err(KeyedError::Weight { kg: w.kg });
                }
                if let Some(t) = w.tare_kg.filter(|t| absurd(*t)) {
                    return Err(KeyedError::Weight { kg: t });
                }
            }
            ReadingValue::Document(d) if d.kind.trim().is_empty() || d.number.trim().is_empty() => {
                return Err(KeyedError::Document {
                    kind: d.kind.clone(),
                    number: d.number.clone(),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// Why an operator's control order is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ControlOrderError {
    /// No order id.
    #[error("a control order needs an id (it is how the order is revoked)")]
    NoId,
    /// No reason.
    #[error(
        "control order {id}: the reason is empty; every order says why (it is audited and shown to the lanes' operators)"
    )]
    NoReason {
        /// Order id.
        id: String,
    },
    /// The subject is not what its kind names.
    #[error("control order {id}: {} {subject:?} is not {}: {source}", noun(*kind), what(*kind))]
    Subject {
        /// Order id.
        id: String,
        /// Container, vehicle or driver.
        kind: SubjectKind,
        /// As given.
        subject: String,
        /// Why.
        #[source]
        source: IdentifierError,
    },
    /// An order demanding release.
    #[error(
        "control order {id}: an order demands manual, inspect or refuse; to let a subject pass, revoke its order"
    )]
    Release {
        /// Order id.
        id: String,
    },
    /// An expiry already past.
    #[error(
        "control order {id}: its expiry {} UTC is not in the future (now {} UTC); give a later expiry, \
         or none for an order in force until revoked",
        crate::query::format_ms(*expires_ms, crate::query::UtcOffset::UTC),
        crate::query::format_ms(*now_ms, crate::query::UtcOffset::UTC)
    )]
    Expired {
        /// Order id.
        id: String,
        /// Its expiry, unix ms.
        expires_ms: i64,
        /// When it was given, unix ms.
        now_ms: i64,
    },
}

fn noun(kind: SubjectKind) -> &'static str {
    match kind {
        SubjectKind::Container => "container",
        SubjectKind::Vehicle => "vehicle",
        SubjectKind::Driver => "driver",
    }
}

fn what(kind: SubjectKind) -> &'static str {
    match kind {
        SubjectKind::Container => "an ISO 6346 container number",
        SubjectKind::Vehicle => "a mainland plate",
        SubjectKind::Driver => "a driver id or card UID",
    }
}

/// Checks an operator's control order as of `now_ms` and returns it with its subject
/// normalised as the lanes match it (the same rules as the platform's orders, plus: no expiry
/// in the past, which would put an order on record that never stopped anyone).
pub fn check_control_order(
    order: &ControlOrder,
    now_ms: i64,
) -> Result<ControlOrder, ControlOrderError> {
    let mut order = order.clone();
    order.id = order.id.trim().to_owned();
    order.reason = order.reason.trim().to_owned();
    let id = order.id.clone();
    if id.is_empty() {
        return Err(ControlOrderError::NoId);
    }
    if order.reason.is_empty() {
        return Err(ControlOrderError::NoReason { id });
    }
    order.subject =
        platform::control_subject(order.subject_kind, &order.subject).map_err(|source| {
            ControlOrderError::Subject {
                id: id.clone(),
                kind: order.subject_kind,
                subject: order.subject.clone(),
                source,
            }
        })?;
    if order.action == Outcome::Release {
        return Err(ControlOrderError::Release { id });
    }
    if let Some(expires_ms) = order.expires_ms
        && expires_ms <= now_ms
    {
        return Err(ControlOrderError::Expired {
            id,
            expires_ms,
            now_ms,
        });
    }
    Ok(order)
}

/// A site action that passed its checks, in the form it is written: an order with its subject
/// normalised, a parameter with its canonical value. What [`check_site_action`] gives and
/// [`CheckedSiteAction::write`] writes.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckedSiteAction {
    /// Put this order in force.
    ControlOrder(ControlOrder),
    /// Revoke an order.
    Revoke {
        /// Order id.
        order_id: String,
        /// Why.
        reason: String,
    },
    /// Set a parameter.
    SetParameter {
        /// The parameter as the store keeps it.
        parameter: Normalised,
        /// The value as given, for the answer.
        given: String,
        /// Why.
        reason: Option<String>,
    },
}

/// Checks a site action as of `now_ms`: a parameter against `catalog` (the site's parameter
/// catalogue, see [`super::RuleSet::catalog`]), an order by [`check_control_order`]. Reads
/// nothing, so it runs before the write, off the store writer's thread; a refused action is
/// never written, not even as an audit entry.
pub fn check_site_action(
    catalog: &ParameterCatalog,
    action: &SiteAction,
    now_ms: i64,
) -> Result<CheckedSiteAction, super::LaneError> {
    Ok(match action {
        SiteAction::ControlOrder { order } => {
            CheckedSiteAction::ControlOrder(check_control_order(order, now_ms)?)
        }
        SiteAction::Revoke { order_id, reason } => CheckedSiteAction::Revoke {
            order_id: order_id.clone(),
            reason: reason.clone(),
        },
        SiteAction::SetParameter {
            name,
            value,
            reason,
        } => CheckedSiteAction::SetParameter {
            parameter: catalog.validate(name, value)?,
            given: value.clone(),
            reason: reason.clone(),
        },
    })
}

impl CheckedSiteAction {
    /// Writes the action and its audit entry in `tx`; returns what was done. Depends only on
    /// its arguments and the store's contents, so a store writer job may run it again on a
    /// fresh transaction.
    pub fn write(
        &self,
        tx: &mut WriteTx,
        operator: &str,
        now_ms: i64,
    ) -> Result<String, super::LaneError> {
        match self {
            CheckedSiteAction::ControlOrder(order) => {
                put_order(tx, operator, order.clone(), now_ms)
            }
            CheckedSiteAction::Revoke {
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
            CheckedSiteAction::SetParameter {
                parameter,
                given,
                reason,
            } => set_parameter(tx, operator, parameter, given, reason.as_deref(), now_ms),
        }
    }
}

/// Checks and carries out a site action in one transaction of its own on `store`, with its
/// audit entry; returns what was done. For callers without a store writer (tools working on
/// a store file, tests); the daemon answers requests with [`answer_site_request`], which
/// also acts once per request id.
pub fn apply_site_action(
    store: &Store,
    catalog: &ParameterCatalog,
    operator: &str,
    action: &SiteAction,
    now_ms: i64,
) -> Result<String, super::LaneError> {
    let checked = check_site_action(catalog, action, now_ms)?;
    store.write(|tx| checked.write(tx, operator, now_ms))
}

/// What became of a site request.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteAnswer {
    /// The answer: for a request answered before, the first one.
    pub reply: OperatorReply,
    /// The request was answered before, and nothing was done now.
    pub repeat: bool,
}

/// Carries out site request `id` once, through the store writer, and answers it.
///
/// The action, its audit entry and its answer (in the store's `requests` table) are written
/// in one transaction, so however often the request arrives (the CLI sends it again every
/// 5 s until it is answered; the broker may deliver a copy twice) it acts once, a crash
/// cannot apply it without remembering it, and every copy gets the first answer. A refused
/// request is remembered too: its copies are refused for the same reason even if the
/// catalogue or the clock has moved since. A store failure is not: nothing was done, and the
/// next copy tries again.
///
/// The check runs first, outside the writer; the job given to the writer looks the id up
/// again in its own transaction, so two copies handled at once still act once.
pub async fn answer_site_request(
    store: &Store,
    writer: &Writer,
    catalog: &ParameterCatalog,
    id: &str,
    request: &SiteRequest,
    now_ms: i64,
) -> SiteAnswer {
    // The usual copy, the CLI's resend of a request answered long ago: no writer job.
    match store
        .snapshot()
        .and_then(|s| s.request_answer_as::<OperatorReply>(id))
    {
        Ok(Some(reply)) => {
            return SiteAnswer {
                reply,
                repeat: true,
            };
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("site request {id}: {e}; looked up again in the write"),
    }
    let answer = |ok: bool, message: String| OperatorReply {
        request: id.to_owned(),
        ok,
        message,
        passage: None,
    };
    let (key, operator) = (id.to_owned(), request.operator.clone());
    let written = match check_site_action(catalog, &request.action, now_ms) {
        Ok(checked) => {
            let done = answer(true, String::new());
            writer
                .write(move |tx| {
                    if let Some(first) = tx.read().request_answer_as::<OperatorReply>(&key)? {
                        return Ok((first, true));
                    }
                    let reply = OperatorReply {
                        message: checked.write(tx, &operator, now_ms)?,
                        ..done.clone()
                    };
                    remember(tx, &key, &reply, now_ms)?;
                    Ok::<_, super::LaneError>((reply, false))
                })
                .await
        }
        Err(refusal) => {
            let refused = answer(false, refusal.to_string());
            let reply = refused.clone();
            let kept = writer
                .write(move |tx| {
                    if let Some(first) = tx.read().request_answer_as::<OperatorReply>(&key)? {
                        return Ok((first, true));
                    }
                    remember(tx, &key, &reply, now_ms)?;
                    Ok::<_, super::LaneError>((reply.clone(), false))
                })
                .await;
            // Refused all the same when the refusal cannot be kept: a copy is checked again.
            kept.or_else(|e| {
                tracing::error!("site request {id}: the refusal was not kept: {e}");
                Ok((refused, false))
            })
        }
    };
    match written {
        Ok((reply, repeat)) => SiteAnswer { reply, repeat },
        Err(e) => SiteAnswer {
            reply: answer(false, format!("nothing was done: {e}")),
            repeat: false,
        },
    }
}

/// Keeps `reply` as the answer to request `id`, in the transaction that acted on it.
fn remember(
    tx: &mut WriteTx,
    id: &str,
    reply: &OperatorReply,
    now_ms: i64,
) -> Result<(), StoreError> {
    let stored = StoredReply {
        at_ms: now_ms,
        reply: serde_json::to_value(reply).unwrap_or_default(),
    };
    tx.request_answered(id, &stored).map(drop)
}

fn put_order(
    tx: &mut WriteTx,
    operator: &str,
    order: ControlOrder,
    now_ms: i64,
) -> Result<String, super::LaneError> {
    let before = tx.read().control_order(&order.id)?;
    let message = format!(
        "control order {} on {} {} in force: {}",
        order.id,
        noun(order.subject_kind),
        order.subject,
        order.reason
    );
    let record = ControlOrderRecord {
        order,
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
        subject: record.order.id.clone(),
        before: before.and_then(|b| serde_json::to_value(b).ok()),
        after: serde_json::to_value(&record).ok(),
    })?;
    Ok(message)
}

fn set_parameter(
    tx: &mut WriteTx,
    operator: &str,
    p: &Normalised,
    given: &str,
    reason: Option<&str>,
    now_ms: i64,
) -> Result<String, super::LaneError> {
    let (name, value) = (&p.name, &p.value);
    let spelled = if given.trim() == value {
        String::new()
    } else {
        format!(", given as {given:?}")
    };
    let before = tx.read().parameter(name)?;
    match tx.set_parameter(name, value, operator, now_ms)? {
        None => Ok(format!("parameter {name} is already {value:?}{spelled}")),
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
            Ok(format!(
                "parameter {name} = {value:?} (version {version}{spelled})"
            ))
        }
    }
}

#[cfg(test)]
#[path = "ops_tests.rs"]
mod tests;
