//! The receiving side of the outbox: what a daemon applies from another's outbox (and tests
//! from their own), once per envelope id, with the receiver's confirmation when the sender
//! asked for one.

use super::AckMessage;
use crate::bus::payload::{self, Envelope};
use crate::bus::{BusClient, BusError, QoS};
use crate::store::{Store, StoreError, WriteTx};

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
