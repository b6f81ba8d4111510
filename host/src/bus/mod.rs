//! The internal MQTT bus: the embedded broker, the client every part uses, the topic scheme and
//! payload envelopes.
//!
//! Owns the broker process ([`broker`]), the connection ([`client`]), topic names ([`topics`])
//! payload checks ([`payload`]), shared message bodies ([`messages`]), and the outbox: its
//! publisher with its own connection, each message's delivery state, and the once-only inbox
//! ([`outbox`]). It does not decide what to publish: devices, lanes and
//! the store's outbox hand it messages. The topic reference is docs/bus.md.

pub mod broker;
pub mod client;
pub mod messages;
pub mod outbox;
pub mod payload;
pub mod topics;

pub use client::{BusClient, ClientOptions, Link, LinkStatus, Message};
pub use messages::{AlarmMessage, RejectedMessage};
pub use outbox::Outbox;
pub use rumqttc::QoS;
pub use topics::Topics;

/// Why the bus could not start or act.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus configuration is wrong.
    #[error("bus configuration: {0}")]
    Config(String),
    /// The embedded broker failed.
    #[error("{0}")]
    Broker(String),
    /// The client failed.
    #[error("bus client: {0}")]
    Client(String),
}
