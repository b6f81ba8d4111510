//! Requests from the bus: operator actions (to their lane), site actions (control orders,
//! parameters), alarm acknowledgements, queries, device commands, platform records and receivers' confirmations.
//! Anything that takes time (a store write, a long query, a device command) runs in a task of
//! its own, so the router goes on at once. Bad input is refused on `kakou/{site}/rejected`
//! with the message id and the reason, and an alarm.
//!
//! What a request changes goes through the daemon's store writer, with the request's answer in
//! the same transaction (the store's `requests` table): a site action or a platform message
//! sent again under the same envelope id (a resend, a redelivery) acts once, and its copies
//! get the first answer without another alarm.

use std::sync::{Arc, Mutex};

use kakou_plugin_sdk::model::Severity;

use super::alarms::{AlarmAckRequest, answer_alarm_ack};
use super::queries::{self, QueryKind, QueryReply, QueryRequest};
use super::{Alarms, CommandMessage, Daemon, PlatformMessage, PlatformReport};
use crate::bus::outbox::AckMessage;
use crate::bus::payload::{self, Envelope};
use crate::bus::{AlarmMessage, BusClient, Message, QoS, RejectedMessage, Topics};
use crate::config::params::ParameterCatalog;
use crate::device::{DeviceLayer, now_ms};
use crate::lane::{LaneInput, OperatorRequest, SiteAnswer, SiteRequest, answer_site_request};
use crate::store::{ApplyOptions, PlatformBatch, Record, Store, StoreError, StoredReply, Writer};

/// What a spawned handler needs to answer or refuse.
#[derive(Clone)]
struct Answer {
    bus: BusClient,
    topics: Topics,
    alarms: Arc<Mutex<Alarms>>,
}

impl Answer {
    fn publish<T: serde::Serialize>(&self, topic: &str, id: String, body: T) {
        let bytes = Envelope::new(id, now_ms(), body).to_bytes();
        if let Err(e) = self.bus.try_publish(topic, bytes, QoS::AtLeastOnce, false) {
            tracing::debug!("{e}");
        }
    }

    /// Refuses a message: the reason on `rejected` for its sender, and an alarm.
    fn refuse(&self, topic: &str, request: Option<String>, reason: String) {
        tracing::warn!(%topic, "{reason}");
        self.reject(topic, request, reason.clone());
        self.alarms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .raise(AlarmMessage {
                code: "bus.rejected".into(),
                lane: None,
                device: None,
                passage: None,
                severity: Severity::Warning,
                message: reason,
            });
    }

    /// Publishes the reason a message was refused on `rejected`, without an alarm: for a copy
    /// of a request refused before, whose alarm was raised then.
    fn reject(&self, topic: &str, request: Option<String>, reason: String) {
        let id = format!(
            "{}-rejected",
            request
                .clone()
                .unwrap_or_else(|| format!("at-{}", now_ms()))
        );
        self.publish(
            &self.topics.rejected(),
            id,
            RejectedMessage {
                topic: topic.to_owned(),
                request,
                reason,
            },
        );
    }
}

/// The envelope id of a message, when its JSON has one: refusals name it.
fn envelope_id(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: String,
    }
    serde_json::from_slice::<IdOnly>(bytes).ok().map(|m| m.id)
}

/// Routes one incoming message.
pub(super) fn on_message(d: &mut Daemon, layer: &Arc<DeviceLayer>, m: Message) {
    let answer = Answer {
        bus: d.bus.clone(),
        topics: d.topics.clone(),
        alarms: d.alarms_shared(),
    };
    let topics = &d.topics;
    let t = m.topic.as_str();
    let result = if t == topics.outbox_ack() {
        payload::parse::<AckMessage>(t, &m.payload)
            .map(|a| d.outbox.confirmed(a.body.acknowledges))
            .map_err(|e| e.to_string())
    } else if t == topics.platform("records") {
        platform(
            d.store.clone(),
            d.writer.clone(),
            d.catalog().map(Arc::new),
            answer.clone(),
            m.topic.clone(),
            m.payload.clone(),
        );
        Ok(())
    } else if t.ends_with("/manual") {
        operator(d, t, &m.payload)
    } else if t == topics.control_order() || t == topics.parameter() {
        site_action(
            d.store.clone(),
            d.writer.clone(),
            d.catalog().unwrap_or_default(),
            answer.clone(),
            m.topic.clone(),
            &m.payload,
        )
    } else if t == topics.alarm_ack() {
        alarm_ack(
            d.store.clone(),
            d.writer.clone(),
            answer.clone(),
            m.topic.clone(),
            &m.payload,
        )
    } else if t == topics.query() {
        query(d, answer.clone(), m.topic.clone(), &m.payload)
    } else {
        command(
            layer.clone(),
            answer.clone(),
            topics,
            m.topic.clone(),
            &m.payload,
        )
    };
    if let Err(reason) = result {
        answer.refuse(&m.topic, envelope_id(&m.payload), reason);
    }
}

/// Hands an operator's message to its lane; the error is the reason it was refused.
fn operator(d: &Daemon, topic: &str, payload: &[u8]) -> Result<(), String> {
    let lane_id = topic
        .strip_prefix(d.topics.root())
        .and_then(|r| r.strip_prefix("/lane/"))
        .and_then(|r| r.strip_suffix("/manual"))
        .ok_or_else(|| format!("message on {topic}: not a lane's manual topic"))?;
    let m: Envelope<OperatorRequest> = payload::parse(topic, payload).map_err(|e| e.to_string())?;
    let lane = d.lanes.get(lane_id).ok_or_else(|| {
        let mut known: Vec<&str> = d.lanes.keys().map(String::as_str).collect();
        known.sort_unstable();
        format!(
            "message {} on {topic}: no lane {lane_id:?} on this site, {} (its lanes: {})",
            m.id,
            d.site,
            known.join(", ")
        )
    })?;
    if m.body.operator.trim().is_empty() {
        return Err(format!(
            "message {} on {topic}: `operator` is empty: every manual action names who did it",
            m.id
        ));
    }
    lane.inputs
        .try_send(LaneInput::Operator {
            id: m.id.clone(),
            request: m.body,
            reply: None,
        })
        .map_err(|e| match e {
            tokio::sync::mpsc::error::TrySendError::Full(_) => format!(
                "message {} on {topic}: lane {lane_id} is busy (1,024 inputs waiting); send it again",
                m.id
            ),
            tokio::sync::mpsc::error::TrySendError::Closed(_) => {
                format!("message {} on {topic}: lane {lane_id} has stopped", m.id)
            }
        })
}

/// Carries out a control-order or parameter action in a task, once per request id
/// ([`answer_site_request`]), and answers when asked. A copy of a request answered before gets
/// the first answer; a copy of a refused one is refused again on `rejected` without another
/// alarm.
fn site_action(
    store: Store,
    writer: Writer,
    catalog: ParameterCatalog,
    answer: Answer,
    topic: String,
    payload: &[u8],
) -> Result<(), String> {
    let m: Envelope<SiteRequest> = payload::parse(&topic, payload).map_err(|e| e.to_string())?;
    if m.body.operator.trim().is_empty() {
        return Err(format!("message {} on {topic}: `operator` is empty", m.id));
    }
    tokio::spawn(async move {
        let id = m.id.clone();
        let SiteAnswer { reply, repeat } =
            answer_site_request(&store, &writer, &catalog, &id, &m.body, now_ms()).await;
        if let Some(reply_to) = &m.body.reply_to {
            answer.publish(reply_to, format!("{id}-reply"), reply.clone());
        }
        let operator = &m.body.operator;
        match (reply.ok, repeat) {
            (true, false) => tracing::info!("{operator}: {}", reply.message),
            (true, true) => tracing::info!(
                "{operator}: request {id} was carried out before: {}",
                reply.message
            ),
            (false, false) => answer.refuse(
                &topic,
                Some(id.clone()),
                format!("message {id} on {topic}: {}", reply.message),
            ),
            (false, true) => answer.reject(
                &topic,
                Some(id.clone()),
                format!("message {id} on {topic}: {}", reply.message),
            ),
        }
    });
    Ok(())
}

/// Acknowledges a stored alarm in a task, once per request id ([`answer_alarm_ack`]), and
/// answers when asked; a refusal is published on `rejected` (with an alarm the first time).
fn alarm_ack(
    store: Store,
    writer: Writer,
    answer: Answer,
    topic: String,
    payload: &[u8],
) -> Result<(), String> {
    let m: Envelope<AlarmAckRequest> =
        payload::parse(&topic, payload).map_err(|e| e.to_string())?;
    if m.body.operator.trim().is_empty() {
        return Err(format!(
            "message {} on {topic}: `operator` is empty: an acknowledgement names who made it",
            m.id
        ));
    }
    tokio::spawn(async move {
        let id = m.id.clone();
        let (reply, repeat) = answer_alarm_ack(&store, &writer, &id, &m.body, now_ms()).await;
        if let Some(reply_to) = &m.body.reply_to {
            answer.publish(reply_to, format!("{id}-reply"), reply.clone());
        }
        let reason = format!("message {id} on {topic}: {}", reply.message);
        match (reply.ok, repeat) {
            (true, _) => tracing::info!("{}: alarm {} acknowledged", m.body.operator, m.body.alarm),
            (false, false) => answer.refuse(&topic, Some(id.clone()), reason),
            (false, true) => answer.reject(&topic, Some(id.clone()), reason),
        }
    });
    Ok(())
}

/// Answers a query in a task, on the requester's reply topic.
fn query(d: &Daemon, answer: Answer, topic: String, payload: &[u8]) -> Result<(), String> {
    let m: Envelope<QueryRequest> = payload::parse(&topic, payload).map_err(|e| e.to_string())?;
    let (store, outbox) = (d.store.clone(), d.outbox.clone());
    tokio::spawn(async move {
        let result = if matches!(m.body.kind, QueryKind::Outbox) {
            match outbox.report().await {
                Some(r) => serde_json::to_value(r).map_err(|e| e.to_string()),
                None => Err("the outbox publisher has stopped".to_owned()),
            }
        } else {
            // Statistics over a long range read many passages: off the executor.
            let kind = m.body.kind.clone();
            tokio::task::spawn_blocking(move || queries::answer(&store, &kind))
                .await
                .unwrap_or_else(|e| Err(format!("query {}: {e}", m.id)))
        };
        let reply = match &result {
            Ok(v) => QueryReply {
                request: m.id.clone(),
                ok: true,
                message: String::new(),
                result: v.clone(),
            },
            Err(e) => QueryReply {
                request: m.id.clone(),
                ok: false,
                message: e.clone(),
                result: serde_json::Value::Null,
            },
        };
        answer.publish(&m.body.reply_to, format!("{}-reply", m.id), reply);
        if let Err(e) = result {
            answer.refuse(
                &topic,
                Some(m.id.clone()),
                format!("query {} on {topic}: {e}", m.id),
            );
        }
    });
    Ok(())
}

/// Sends a command message to its device in a task; a failure is refused with the reason.
fn command(
    layer: Arc<DeviceLayer>,
    answer: Answer,
    topics: &Topics,
    topic: String,
    payload: &[u8],
) -> Result<(), String> {
    let rest = topic
        .strip_prefix(topics.root())
        .and_then(|r| r.strip_prefix("/lane/"))
        .ok_or_else(|| format!("message on {topic}: not a topic this daemon handles"))?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [lane, "device", device, "command"] = parts.as_slice() else {
        return Err(format!("message on {topic}: not a device command topic"));
    };
    let (lane, device) = ((*lane).to_owned(), (*device).to_owned());
    let m: Envelope<CommandMessage> = payload::parse(&topic, payload).map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        if let Err(e) = layer.command(&lane, &device, m.body.command).await {
            answer.refuse(
                &topic,
                Some(m.id.clone()),
                format!("command {} on {topic}: {e}", m.id),
            );
        }
    });
    Ok(())
}

/// Applies a platform message all or nothing in a task ([`settle_platform`]) and publishes
/// what became of it. With a catalogue (a site whose lanes decide), parameter records are
/// checked against it.
fn platform(
    store: Store,
    writer: Writer,
    catalog: Option<Arc<ParameterCatalog>>,
    answer: Answer,
    topic: String,
    payload: Vec<u8>,
) {
    tokio::spawn(async move {
        let m: Envelope<PlatformMessage> = match payload::parse(&topic, &payload) {
            Ok(m) => m,
            Err(e) => return answer.refuse(&topic, envelope_id(&payload), e.to_string()),
        };
        let id = m.id.clone();
        let (report, repeat) =
            settle_platform(&store, &writer, catalog, &id, m.body.records, now_ms()).await;
        answer.publish(
            &answer.topics.platform("report"),
            format!("{id}-report"),
            report.clone(),
        );
        let count = report.records;
        if repeat {
            tracing::info!("platform message {id}: applied before; its report sent again");
        } else if report.rejected.is_empty() {
            tracing::info!("platform message {id}: {count} records applied");
        } else {
            answer.refuse(
                &topic,
                Some(id.clone()),
                format!(
                    "platform message {id}: nothing applied; {}",
                    report.rejected.join("; ")
                ),
            );
        }
    });
}

/// The `requests` key of platform message `id`'s report: apart from operators' request ids,
/// which other senders choose.
fn platform_key(id: &str) -> String {
    format!("platform:{id}")
}

/// Applies platform message `id` (its records as JSON) all or nothing, once, through the store
/// writer; returns its report and whether it had been applied before (the report is then the
/// first one, and nothing was done now).
///
/// An applied message's report is kept in the store's `requests` table in the transaction that
/// applies it, so a redelivery (same envelope id) does not apply it again: records are applied
/// idempotently one by one, but a copy arriving after a later message changed the same
/// records would put the old values back. A refused message changed nothing and is not kept:
/// a later copy is checked afresh and applies if what it lacked (say, the enterprise its
/// vehicles name, sent in another message) has arrived since. The store's `inbox` table,
/// which keeps the ids of messages received from another daemon's outbox, holds no report to
/// answer with, hence `requests`.
async fn settle_platform(
    store: &Store,
    writer: &Writer,
    catalog: Option<Arc<ParameterCatalog>>,
    id: &str,
    values: Vec<serde_json::Value>,
    now_ms: i64,
) -> (PlatformReport, bool) {
    let key = platform_key(id);
    match store
        .snapshot()
        .and_then(|s| s.request_answer_as::<PlatformReport>(&key))
    {
        Ok(Some(first)) => return (first, true),
        Ok(None) => {}
        Err(e) => tracing::warn!("platform message {id}: {e}; looked up again in the write"),
    }
    let mut records = Vec::new();
    let mut rejected = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        match Record::from_json(value) {
            Ok(r) => records.push(r),
            Err(errors) => rejected.extend(
                errors
                    .into_iter()
                    .map(|e| format!("record {}: {}: {}", i + 1, e.field, e.reason)),
            ),
        }
    }
    let report = PlatformReport {
        message: id.to_owned(),
        applied: false,
        records: (records.len() + rejected.len()) as u64,
        rejected,
    };
    if !report.rejected.is_empty() {
        return (report, false);
    }
    let mut options = ApplyOptions::new("platform", now_ms);
    if let Some(c) = catalog {
        options = options.with_catalog(c);
    }
    options.source = format!("bus message {id}");
    let batch = PlatformBatch::new(&records, &options);
    let unapplied = report.clone();
    let written = writer
        .write(move |tx| {
            if let Some(first) = tx.read().request_answer_as::<PlatformReport>(&key)? {
                return Ok((first, true));
            }
            let import = batch.apply(tx)?;
            let report = PlatformReport {
                applied: import.applied,
                rejected: import.rejected.iter().map(ToString::to_string).collect(),
                ..unapplied.clone()
            };
            if report.applied {
                let stored = StoredReply {
                    at_ms: now_ms,
                    reply: serde_json::to_value(&report).unwrap_or_default(),
                };
                tx.request_answered(&key, &stored)?;
            }
            Ok::<_, StoreError>((report, false))
        })
        .await;
    written.unwrap_or_else(|e| {
        let report = PlatformReport {
            rejected: vec![format!("the import failed: {e}")],
            ..report
        };
        (report, false)
    })
}

#[cfg(test)]
#[path = "requests_tests.rs"]
mod tests;
