//! The outbox: what must not be lost leaves through the store.
//!
//! Lanes (and later the transit network) hand the outbox typed messages; it builds their
//! envelopes ([`Outbox::message`]), and the caller writes the result in the same store
//! transaction as the state change it reports
//! ([`WriteTx::outbox_push`](crate::store::WriteTx::outbox_push)), then calls
//! [`Outbox::wake`]. The publisher ([`publisher`]) runs on a connection of its own and takes
//! each message through its life:
//!
//! ```text
//! queued ──publish (QoS 1, packet id of its own)──► in flight ──PUBACK──► broker-acked
//!   ▲                                                   │                   │
//!   └──── session lost / receiver silent too long ──────┘       receiver confirms
//!                                                                           ▼
//!                                                                       delivered
//! ```
//!
//! - [`Confirm::Broker`]: delivered by the broker's PUBACK. Enough where the broker keeps
//!   sessions on disk.
//! - [`Confirm::Receiver`]: delivered by the receiver itself, after it has applied the
//!   message, on the topic named in the envelope's `ack` field ([`receive`] does both). A
//!   broker that acknowledged a message and then restarted without it costs a resend.
//!
//! Acknowledgements are matched exactly: the publisher gives every message in flight a packet
//! id of its own and hands the publish to the MQTT event loop it alone drives, so a PUBACK
//! names its message whatever else is published, reconnected or resent meanwhile. Receivers
//! apply each envelope id once ([`apply_once`]), so resends have one effect. Message ids stay
//! the same across resends and restarts.
//!
//! This module owns the outbox's topics, envelopes, confirmation mode and delivery state. It
//! does not decide what is sent (its callers do) and writes only outbox rows.

mod inbox;
pub mod publisher;

pub use inbox::{Applied, InboxError, apply_once, receive};

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::Topics;
use super::payload::Envelope;
use crate::store::{Confirm, OutboxMessage};

/// How the outbox publisher paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxOptions {
    /// Messages in flight at once (published, not yet acknowledged by the broker); each has
    /// its own packet id, so at most 65,535.
    pub window: u16,
    /// A message its receiver has not confirmed within this time of the broker's
    /// acknowledgement is published again.
    pub receiver_timeout: Duration,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        OutboxOptions {
            window: 100,
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

/// Where one message is now, as the publisher knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// In the store, waiting for a free slot or for the broker.
    Queued,
    /// Published; the broker has not acknowledged it yet.
    InFlight,
    /// The broker has it; waiting for the receiver's confirmation.
    BrokerAcked,
}

/// One message still in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// Outbox id (increasing, never reused).
    pub id: u64,
    /// Envelope id (what receivers apply once).
    pub message_id: String,
    /// Topic.
    pub topic: String,
    /// Where it is.
    pub stage: Stage,
    /// Whose acknowledgement delivers it.
    pub confirm: Confirm,
    /// Publishes so far.
    pub attempts: u32,
    /// Milliseconds since it was queued.
    pub age_ms: i64,
    /// Why the last attempt did not get through.
    pub last_error: Option<String>,
}

/// The outbox as the publisher sees it (`kakou outbox --site`, the `outbox` query).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxReport {
    /// The publisher's connection is up.
    pub connected: bool,
    /// Messages waiting to be published.
    pub queued: u64,
    /// Published, not yet acknowledged by the broker.
    pub in_flight: u64,
    /// Acknowledged by the broker, waiting for their receivers.
    pub broker_acked: u64,
    /// Age of the oldest message not delivered, ms.
    pub oldest_age_ms: Option<i64>,
    /// Delivered since the daemon started.
    pub delivered: u64,
    /// Publishes since the daemon started (first attempts and resends).
    pub publishes: u64,
    /// Why the connection last failed.
    pub last_error: Option<String>,
    /// The oldest messages not delivered (at most 100), oldest first.
    pub messages: Vec<OutboxItem>,
}

/// What the publisher is asked to do besides publishing.
#[derive(Debug)]
pub(crate) enum Work {
    /// New messages are in the store.
    Wake,
    /// A receiver confirmed this envelope id.
    Confirmed(String),
    /// Report the state.
    Report(oneshot::Sender<OutboxReport>),
}

/// The handle every part of the daemon uses: builds messages, wakes the publisher, passes on
/// confirmations, asks for the state. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    topics: Topics,
    confirm: Confirm,
    work: mpsc::UnboundedSender<Work>,
    /// None for a handle without a publisher ([`Outbox::unpublished`]).
    nudge: Option<Arc<publisher::Nudge>>,
}

impl Outbox {
    /// A handle with no publisher: messages are built and stay in the store's outbox (for
    /// tools and tests that run lanes without a bus; a daemon started on the same store later
    /// publishes them).
    pub fn unpublished(topics: Topics, confirm: Confirm) -> Outbox {
        let (work, _) = mpsc::unbounded_channel();
        Outbox {
            topics,
            confirm,
            work,
            nudge: None,
        }
    }

    /// The site's topics.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Whose acknowledgement delivers passage messages on this site (`[bus] confirm`).
    pub fn confirm(&self) -> Confirm {
        self.confirm
    }

    /// A message for `topic` with envelope id `id` (stable: a resend carries the same id),
    /// delivered as the site's `[bus] confirm` says.
    pub fn message<T: Serialize>(
        &self,
        topic: String,
        id: String,
        at_ms: i64,
        body: T,
    ) -> OutboxMessage {
        self.message_confirmed_by(topic, id, at_ms, body, self.confirm)
    }

    /// [`Outbox::message`] with its own confirmation mode.
    pub fn message_confirmed_by<T: Serialize>(
        &self,
        topic: String,
        id: String,
        at_ms: i64,
        body: T,
        confirm: Confirm,
    ) -> OutboxMessage {
        match confirm {
            Confirm::Broker => {
                let mut m = OutboxMessage::new(
                    topic,
                    Envelope::new(id.clone(), at_ms, body).to_bytes(),
                    at_ms,
                );
                m.message_id = id;
                m
            }
            Confirm::Receiver => {
                let bytes = Envelope::new(id.clone(), at_ms, body)
                    .with_ack(self.topics.outbox_ack())
                    .to_bytes();
                OutboxMessage::confirmed_by_receiver(topic, bytes, id, at_ms)
            }
        }
    }

    /// Tells the publisher that messages were committed to the store.
    pub fn wake(&self) {
        self.send(Work::Wake);
    }

    /// Passes on a receiver's confirmation (from [`Topics::outbox_ack`]).
    pub fn confirmed(&self, message_id: String) {
        self.send(Work::Confirmed(message_id));
    }

    /// The outbox's state now; `None` when the publisher has stopped.
    pub async fn report(&self) -> Option<OutboxReport> {
        let (tx, rx) = oneshot::channel();
        self.send(Work::Report(tx));
        rx.await.ok()
    }

    fn send(&self, work: Work) {
        if self.work.send(work).is_ok()
            && let Some(n) = &self.nudge
        {
            n.nudge();
        }
    }
}
