//! The outbox: what must not be lost leaves through the store.
//!
//! A state change and its message are written in one store transaction
//! ([`WriteTx::outbox_push`](crate::store::WriteTx::outbox_push)); this task publishes pending
//! messages with QoS 1, oldest first, removes each when the broker acknowledges it, and
//! publishes again whatever is still pending after a reconnect or a restart. A broker outage
//! delays messages and loses none. Receivers apply each message id once ([`apply_once`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, watch};

use super::client::{BusClient, Link};
use super::payload::{self, Envelope};
use crate::store::{Store, StoreError, WriteTx};

/// How many pending messages are put in flight at once.
const WINDOW: usize = 256;
/// A message not acknowledged within this time is published again.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes the store's outbox until `shutdown`. `links` are the bus client's connection
/// events (this task owns them); `wake` is notified after writes that pushed messages.
pub async fn run(
    store: Store,
    bus: BusClient,
    mut links: mpsc::UnboundedReceiver<Link>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connected = false;
    let mut inflight: BTreeMap<u64, Instant> = BTreeMap::new();
    loop {
        if connected {
            match store.outbox_pending(WINDOW) {
                Ok(pending) => {
                    let now = Instant::now();
                    for entry in pending {
                        if inflight
                            .get(&entry.id)
                            .is_some_and(|sent| now.duration_since(*sent) < ACK_TIMEOUT)
                        {
                            continue;
                        }
                        let m = entry.message;
                        match bus
                            .publish_tracked(&entry.id.to_string(), &m.topic, m.payload)
                            .await
                        {
                            Ok(()) => {
                                inflight.insert(entry.id, now);
                            }
                            Err(e) => {
                                tracing::warn!("outbox: {e}");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::error!("outbox: cannot read pending messages: {e}"),
            }
        }
        tokio::select! {
            link = links.recv() => match link {
                Some(Link::Connected) => {
                    tracing::info!("bus connected");
                    connected = true;
                    // Whatever was in flight is published again: receivers drop repeats.
                    inflight.clear();
                }
                Some(Link::Disconnected(why)) => {
                    if connected {
                        tracing::warn!("bus disconnected: {why}");
                    }
                    connected = false;
                }
                Some(Link::Acked(id)) => {
                    if let Ok(id) = id.parse::<u64>() {
                        inflight.remove(&id);
                        if let Err(e) = store.outbox_ack(id) {
                            tracing::error!("outbox: cannot remove acknowledged message {id}: {e}");
                        }
                    }
                }
                None => return,
            },
            _ = wake.notified() => {}
            // Re-check now and then: a write may have forgotten to wake us.
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = crate::device::transport::stopped(&mut shutdown) => return,
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
    let applied = store.write(|tx| {
        if !tx.inbox_mark(&message.id, now_ms)? {
            return Ok::<_, StoreError>(Applied::Repeat);
        }
        apply(tx, &message).map(Applied::New)
    })?;
    Ok(applied)
}
