//! The outbox: what must not be lost leaves through the store.
//!
//! A state change and its message are written in one store transaction
//! ([`WriteTx::outbox_push`](crate::store::WriteTx::outbox_push)); [`run`] publishes pending
//! messages with QoS 1, oldest first, and publishes again whatever is still pending after a
//! reconnect, a restart or a timeout. A message leaves the outbox when it is acknowledged:
//!
//! - [`Confirm::Broker`]: by the broker's PUBACK. Enough where the broker keeps sessions on disk.
//! - [`Confirm::Receiver`]: by the receiver itself, after it has applied the message, on the
//!   topic named in the envelope's `ack` field ([`receive`] does both). A broker that
//!   acknowledged a message and then restarted without it (the embedded broker keeps no
//!   sessions), or a receiver that was not subscribed yet, costs a resend, never the message.
//!
//! Receivers apply each envelope id once ([`apply_once`]), so resends have one effect.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, watch};

use super::client::{BusClient, Link};
use super::payload::{self, Envelope};
use super::{BusError, QoS};
use crate::store::{Confirm, Store, StoreError, WriteTx};

/// How the outbox publisher paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxOptions {
    /// Messages in flight at once (published, not yet acknowledged).
    pub window: usize,
    /// A message the broker has not acknowledged within this time is published again.
    pub broker_timeout: Duration,
    /// A message its receiver has not confirmed within this time of the broker's
    /// acknowledgement is published again.
    pub receiver_timeout: Duration,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        OutboxOptions {
            window: 256,
            broker_timeout: Duration::from_secs(5),
            receiver_timeout: Duration::from_secs(30),
        }
    }
}

/// A receiver's confirmation that it applied a message (on the envelope's `ack` topic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckMessage {
    /// The envelope id applied.
    pub acknowledges: String,
    /// Who applied it.
    pub receiver: String,
}

/// One published message waiting for its acknowledgement.
struct Flight {
    at: Instant,
    confirm: Confirm,
    /// The broker has it; now the receiver's confirmation is awaited.
    broker_acked: bool,
}

/// Publishes the store's outbox until `shutdown`. `links` are the bus client's connection
/// events (this task owns them); `acks` carries the envelope ids receivers confirmed (the
/// daemon forwards them from [`Topics::outbox_ack`](super::Topics::outbox_ack)); `wake` is
/// notified after writes that pushed messages.
pub async fn run(
    store: Store,
    bus: BusClient,
    mut links: mpsc::UnboundedReceiver<Link>,
    mut acks: mpsc::UnboundedReceiver<String>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
    options: OutboxOptions,
) {
    let mut connected = false;
    let mut inflight: BTreeMap<u64, Flight> = BTreeMap::new();
    // Envelope id → outbox id, for messages whose receivers confirm.
    let mut awaiting: HashMap<String, u64> = HashMap::new();
    loop {
        if connected {
            publish_pending(&store, &bus, &options, &mut inflight, &mut awaiting).await;
        }
        tokio::select! {
            link = links.recv() => {
                let Some(first) = link else { return };
                let mut batch = vec![first];
                while let Ok(more) = links.try_recv() {
                    batch.push(more);
                }
                let mut removed = Vec::new();
                let mut sent = Vec::new();
                for link in batch {
                    match link {
                        Link::Connected => {
                            tracing::info!("bus connected");
                            connected = true;
                            // Whatever was in flight is published again: receivers drop repeats.
                            inflight.clear();
                        }
                        Link::Disconnected(why) => {
                            if connected {
                                tracing::warn!("bus disconnected: {why}");
                            }
                            connected = false;
                        }
                        Link::Acked(id) => {
                            let Ok(id) = id.parse::<u64>() else { continue };
                            match inflight.get_mut(&id) {
                                Some(f) if f.confirm == Confirm::Receiver => {
                                    f.broker_acked = true;
                                    f.at = Instant::now();
                                    sent.push(id);
                                }
                                Some(_) => {
                                    inflight.remove(&id);
                                    removed.push(id);
                                }
                                None => {}
                            }
                        }
                    }
                }
                if !removed.is_empty()
                    && let Err(e) = store.outbox_ack_many(&removed)
                {
                    tracing::error!("outbox: cannot remove {} acknowledged messages: {e}", removed.len());
                }
                if !sent.is_empty()
                    && let Err(e) = store.outbox_sent_many(&sent, crate::device::now_ms())
                {
                    tracing::error!("outbox: cannot mark {} messages sent: {e}", sent.len());
                }
            }
            ack = acks.recv() => {
                let Some(first) = ack else { return };
                let mut done = Vec::new();
                let mut confirm = |message_id: String| match awaiting.remove(&message_id) {
                    Some(id) => {
                        inflight.remove(&id);
                        done.push(id);
                    }
                    // Confirmed before (a repeat's confirmation), or from before a restart:
                    // the message is published again and confirmed again.
                    None => tracing::debug!("outbox: confirmation of {message_id}, not awaited"),
                };
                confirm(first);
                while let Ok(more) = acks.try_recv() {
                    confirm(more);
                }
                if !done.is_empty()
                    && let Err(e) = store.outbox_ack_many(&done)
                {
                    tracing::error!("outbox: cannot remove {} confirmed messages: {e}", done.len());
                }
            }
            _ = wake.notified() => {}
            // Re-check now and then: timeouts, and a write that forgot to wake us.
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = crate::device::transport::stopped(&mut shutdown) => return,
        }
    }
}

async fn publish_pending(
    store: &Store,
    bus: &BusClient,
    options: &OutboxOptions,
    inflight: &mut BTreeMap<u64, Flight>,
    awaiting: &mut HashMap<String, u64>,
) {
    let pending = match store.outbox_pending(options.window) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("outbox: cannot read pending messages: {e}");
            return;
        }
    };
    let now = Instant::now();
    for entry in pending {
        if let Some(f) = inflight.get(&entry.id) {
            let timeout = if f.broker_acked {
                options.receiver_timeout
            } else {
                options.broker_timeout
            };
            if now.duration_since(f.at) < timeout {
                continue;
            }
        }
        let m = entry.message;
        match bus
            .publish_tracked(&entry.id.to_string(), &m.topic, m.payload)
            .await
        {
            Ok(()) => {
                inflight.insert(
                    entry.id,
                    Flight {
                        at: now,
                        confirm: m.confirm,
                        broker_acked: false,
                    },
                );
                if m.confirm == Confirm::Receiver {
                    awaiting.insert(m.message_id, entry.id);
                }
            }
            Err(e) => {
                tracing::warn!("outbox: {e}");
                break;
            }
        }
    }
}

/// What happened to an incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied<T> {
    /// Applied now.
    New(T),
    /// Its id was applied before; nothing was done.
    Repeat,
}

/// Why an incoming message was not applied.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// The payload was refused.
    #[error(transparent)]
    Payload(#[from] payload::PayloadError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The confirmation could not be published (the message was applied; the sender will
    /// publish it again and it will be confirmed then).
    #[error("applied, but the confirmation was not sent: {0}")]
    Confirm(#[from] BusError),
}

/// Applies an incoming message at most once: its envelope id is recorded in the store in the
/// same transaction as `apply`'s changes, so a repeat (a resend after a reconnect) does nothing.
pub fn apply_once<B, T>(
    store: &Store,
    topic: &str,
    bytes: &[u8],
    now_ms: i64,
    apply: impl FnOnce(&mut WriteTx, &Envelope<B>) -> Result<T, StoreError>,
) -> Result<Applied<T>, InboxError>
where
    B: serde::de::DeserializeOwned,
{
    let message: Envelope<B> = payload::parse(topic, bytes)?;
    Ok(apply_envelope(store, &message, now_ms, apply)?)
}

fn apply_envelope<B, T>(
    store: &Store,
    message: &Envelope<B>,
    now_ms: i64,
    apply: impl FnOnce(&mut WriteTx, &Envelope<B>) -> Result<T, StoreError>,
) -> Result<Applied<T>, StoreError> {
    store.write(|tx| {
        if !tx.inbox_mark(&message.id, now_ms)? {
            return Ok::<_, StoreError>(Applied::Repeat);
        }
        apply(tx, message).map(Applied::New)
    })
}

/// The receiving side of the outbox: applies a message once ([`apply_once`]) and, when the
/// sender asked for it, confirms it on the envelope's `ack` topic as `receiver`. A repeat is
/// confirmed again: the first confirmation may have been lost.
pub async fn receive<B, T>(
    store: &Store,
    bus: &BusClient,
    receiver: &str,
    topic: &str,
    bytes: &[u8],
    now_ms: i64,
    apply: impl FnOnce(&mut WriteTx, &Envelope<B>) -> Result<T, StoreError>,
) -> Result<Applied<T>, InboxError>
where
    B: serde::de::DeserializeOwned,
{
    let message: Envelope<B> = payload::parse(topic, bytes)?;
    let applied = apply_envelope(store, &message, now_ms, apply)?;
    if let Some(ack_topic) = &message.ack {
        let ack = Envelope::new(
            format!("{receiver}-ack-{}", message.id),
            now_ms,
            AckMessage {
                acknowledges: message.id.clone(),
                receiver: receiver.to_owned(),
            },
        );
        bus.publish(ack_topic, ack.to_bytes(), QoS::AtLeastOnce, false)
            .await?;
    }
    Ok(applied)
}
