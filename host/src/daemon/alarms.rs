//! Alarms the daemon itself raises (devices, the bus, hot swap, bad input): each is written to
//! the store, as an alarm with its state (where a station that was offline finds it) and to
//! the outbox, in one transaction, so it reaches the alarm topic once the broker is back, and
//! never waits for the broker. A device's alarms are thinned (a device faulting on every frame
//! would flood the store): at most one per code, lane and device per [`QUIET`], the next one
//! saying how many were held back and counting them on the stored alarm. Every other alarm is
//! kept.
//!
//! Also operators' acknowledgements of stored alarms (`kakou/{site}/alarm-ack`,
//! [`answer_alarm_ack`]): once per request id, with an audit entry, the answer kept in the
//! store's `requests` table for a retry.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::bus::{AlarmMessage, Outbox};
use crate::device::now_ms;
use crate::store::{
    AlarmRecord, AlarmUpdate, AuditEntry, Confirm, Store, StoreError, StoredReply, Writer,
};

/// The shortest time between two alarms with the same code, lane and device.
pub const QUIET: Duration = Duration::from_secs(10);

/// What makes two alarms alike: code, lane, device.
type AlarmKey = (String, Option<String>, Option<String>);

/// Raises alarms through the outbox.
pub struct Alarms {
    writer: Writer,
    outbox: Outbox,
    prefix: String,
    next: u64,
    /// When each kind of alarm last went out, and how many were held back since.
    last: HashMap<AlarmKey, (Instant, u64)>,
}

impl Alarms {
    /// Alarms with envelope ids `{prefix}-alarm-N`.
    pub fn new(writer: Writer, outbox: Outbox, prefix: String) -> Self {
        Alarms {
            writer,
            outbox,
            prefix,
            next: 0,
            last: HashMap::new(),
        }
    }

    /// Queues `alarm` (unless one like it went out within [`QUIET`]); returns at once.
    pub fn raise(&mut self, alarm: AlarmMessage) {
        self.raise_at(alarm, Instant::now());
    }

    /// [`Alarms::raise`] at `now`; the task writing it, when it is not held back.
    fn raise_at(
        &mut self,
        mut alarm: AlarmMessage,
        now: Instant,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let key = (alarm.code.clone(), alarm.lane.clone(), alarm.device.clone());
        let thinned = alarm.device.is_some();
        // Raised this many times since the last one stored: the held-back repeats count.
        let mut times = 1;
        match self.last.get_mut(&key).filter(|_| thinned) {
            Some((at, held)) if now.duration_since(*at) < QUIET => {
                *held += 1;
                return None;
            }
            Some((at, held)) => {
                times += *held;
                if *held > 0 {
                    alarm.message = format!("{} ({held} more like it held back)", alarm.message);
                }
                *at = now;
                *held = 0;
            }
            None if !thinned => {}
            None => {
                if self.last.len() > 10_000 {
                    self.last
                        .retain(|_, (at, _)| now.duration_since(*at) < QUIET);
                }
                self.last.insert(key, (now, 0));
            }
        }
        tracing::warn!(code = %alarm.code, lane = ?alarm.lane, device = ?alarm.device, "{}", alarm.message);
        self.next += 1;
        let at = now_ms();
        let id = format!("{}-alarm-{}", self.prefix, self.next);
        let stored = alarm.to_record();
        let message = self.outbox.message_confirmed_by(
            self.outbox.topics().alarm(),
            id,
            at,
            alarm,
            Confirm::Broker,
        );
        let (writer, outbox) = (self.writer.clone(), self.outbox.clone());
        Some(tokio::spawn(async move {
            let written: Result<(), StoreError> = writer
                .write(move |tx| {
                    tx.outbox_push(&message)?;
                    tx.raise_alarm(&message.message_id, &stored, at, times)
                        .map(drop)
                })
                .await;
            match written {
                Ok(()) => outbox.wake(),
                Err(e) => tracing::error!("alarm not recorded: {e}"),
            }
        }))
    }
}

/// An operator acknowledges a stored alarm (`kakou/{site}/alarm-ack`); the envelope id is the
/// request id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmAckRequest {
    /// The alarm's id (`kakou alarm list`).
    pub alarm: String,
    /// Operator id.
    pub operator: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Where to send the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// The answer to an [`AlarmAckRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmAckReply {
    /// The request id.
    pub request: String,
    /// Acknowledged by this request.
    pub ok: bool,
    /// Why not, when not.
    #[serde(default)]
    pub message: String,
    /// The alarm as it is after the request, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<AlarmRecord>,
}

/// Acknowledges an alarm once per request id: the acknowledgement, its audit entry and the
/// answer in one transaction. A copy of a request answered before (even a refused one) gets the
/// first answer, with `true`. A store failure is answered as not done, and not kept: the next
/// copy tries again.
pub async fn answer_alarm_ack(
    store: &Store,
    writer: &Writer,
    id: &str,
    request: &AlarmAckRequest,
    now_ms: i64,
) -> (AlarmAckReply, bool) {
    match store
        .snapshot()
        .and_then(|s| s.request_answer_as::<AlarmAckReply>(id))
    {
        Ok(Some(first)) => return (first, true),
        Ok(None) => {}
        Err(e) => tracing::warn!("alarm request {id}: {e}; looked up again in the write"),
    }
    let (key, req) = (id.to_owned(), request.clone());
    let written = writer
        .write(move |tx| {
            if let Some(first) = tx.read().request_answer_as::<AlarmAckReply>(&key)? {
                return Ok((first, true));
            }
            let alarm_id = req.alarm.as_str();
            let update =
                tx.acknowledge_alarm(alarm_id, &req.operator, now_ms, req.note.as_deref())?;
            let reply = |ok: bool, message: String, alarm: Option<AlarmRecord>| AlarmAckReply {
                request: key.clone(),
                ok,
                message,
                alarm,
            };
            let reply = match update {
                AlarmUpdate::Updated(r) => {
                    tx.audit(AuditEntry {
                        who: req.operator.clone(),
                        when_ms: now_ms,
                        action: "alarm.ack".into(),
                        subject: r.id.clone(),
                        before: None,
                        after: serde_json::to_value(&r.acknowledged).ok(),
                    })?;
                    reply(true, String::new(), Some(r))
                }
                AlarmUpdate::Unknown => reply(
                    false,
                    format!(
                        "no alarm {alarm_id:?} in the store; `kakou alarm list` shows their ids"
                    ),
                    None,
                ),
                AlarmUpdate::AlreadyAcknowledged(r) => {
                    let by = r.acknowledged.as_ref().map(|a| (a.by.clone(), a.at_ms));
                    let (who, at) = by.unwrap_or_default();
                    reply(
                        false,
                        format!("alarm {alarm_id} was acknowledged before, by {who} at {at} ms"),
                        Some(r),
                    )
                }
                AlarmUpdate::AlreadyCleared(r) => reply(
                    false,
                    format!("alarm {alarm_id} is cleared; nothing to acknowledge"),
                    Some(r),
                ),
            };
            let stored = StoredReply {
                at_ms: now_ms,
                reply: serde_json::to_value(&reply).unwrap_or_default(),
            };
            tx.request_answered(&key, &stored)?;
            Ok::<_, StoreError>((reply, false))
        })
        .await;
    written.unwrap_or_else(|e| {
        (
            AlarmAckReply {
                request: id.to_owned(),
                ok: false,
                message: format!("not done: {e}; send the request again"),
                alarm: None,
            },
            false,
        )
    })
}

#[cfg(test)]
mod tests {
    use kakou_plugin_sdk::model::Severity;

    use super::*;
    use crate::bus::Topics;

    fn fault(message: &str) -> AlarmMessage {
        AlarmMessage {
            code: "device.fault".into(),
            lane: Some("L01".into()),
            device: Some("scale".into()),
            passage: None,
            severity: Severity::Warning,
            message: message.into(),
        }
    }

    #[tokio::test]
    async fn a_device_alarm_held_back_is_counted_on_the_stored_alarm() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("kakou.redb")).expect("open");
        let writer = Writer::spawn(store.clone()).expect("writer");
        let outbox = Outbox::unpublished(Topics::new("s"), Confirm::Broker);
        let mut alarms = Alarms::new(writer, outbox, "s-1".into());
        let t0 = Instant::now();
        alarms
            .raise_at(fault("checksum"), t0)
            .expect("the first goes out")
            .await
            .expect("written");
        // Three more within the quiet time are held back, not written.
        for n in 1..=3 {
            assert!(
                alarms
                    .raise_at(fault("checksum"), t0 + Duration::from_millis(n))
                    .is_none()
            );
        }
        let snap = store.snapshot().expect("snap");
        let open = snap.open_alarms().expect("open");
        assert_eq!((open.len(), open[0].count), (1, 1));
        drop(snap);
        // The next after it counts them: raised 5 times in all, one alarm.
        alarms
            .raise_at(fault("checksum"), t0 + QUIET)
            .expect("goes out")
            .await
            .expect("written");
        let open = store.snapshot().expect("snap").open_alarms().expect("open");
        assert_eq!(open.len(), 1);
        assert_eq!((open[0].id.as_str(), open[0].count), ("s-1-alarm-1", 5));
        assert_eq!(open[0].alarm.message, "checksum (3 more like it held back)");
        // Each went to the outbox too.
        assert_eq!(
            store.snapshot().expect("snap").outbox_len().expect("len"),
            2
        );
    }
}
