//! The bus client every part of the daemon uses, in both modes (embedded or external broker):
//! rumqttc with reconnection, session resumption, a last will, subscriptions that are made
//! again after any reconnection until the broker confirms them, and incoming messages routed
//! to a channel.
//!
//! Two ways to publish. [`BusClient::try_publish`] never waits: while the broker is away, or
//! the connection's queue is full, the message is dropped and counted ([`LinkStatus::dropped`]).
//! That is for telemetry (readings, device status, replies): a lane must never wait on the bus.
//! [`BusClient::publish`] waits for room in the queue, for callers that have nothing else to do
//! (the command line). What must arrive goes through the outbox instead
//! ([`super::outbox`]), which has its own connection.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, Event, Incoming, LastWill, MqttOptions, QoS, SubscribeFilter, SubscribeReasonCode,
    Transport,
};
use tokio::sync::mpsc;

use super::BusError;

/// A subscription the broker has not confirmed within this time is asked for again.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach the broker.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `mqtt://host:port` or `mqtts://host:port`.
    pub url: String,
    /// Client id: stable across restarts so the broker resumes the session.
    pub client_id: String,
    /// Credentials.
    pub credentials: Option<(String, String)>,
    /// CA certificate (PEM) for `mqtts://`.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for `mqtts://` with client authentication.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Published by the broker if this client disappears: topic and payload (retained).
    pub last_will: Option<(String, Vec<u8>)>,
    /// Start a fresh session instead of resuming.
    pub clean_session: bool,
}

impl ClientOptions {
    /// Options for `url` with this client id and nothing else.
    pub fn new(url: &str, client_id: &str) -> Self {
        ClientOptions {
            url: url.to_owned(),
            client_id: client_id.to_owned(),
            credentials: None,
            ca_file: None,
            client_cert: None,
            last_will: None,
            clean_session: false,
        }
    }

    /// The rumqttc options for these settings; the outbox's own connection uses them too.
    pub(crate) fn mqtt(&self, client_id: &str) -> Result<MqttOptions, BusError> {
        let (tls, host, port) = parse_url(&self.url)?;
        let mut mqtt = MqttOptions::new(client_id, host, port);
        mqtt.set_keep_alive(Duration::from_secs(10))
            .set_clean_session(self.clean_session)
            .set_max_packet_size(1 << 20, 1 << 20)
            .set_inflight(100);
        if let Some((u, p)) = &self.credentials {
            mqtt.set_credentials(u, p);
        }
        if tls {
            let read = |p: &PathBuf| {
                std::fs::read(p)
                    .map_err(|e| BusError::Config(format!("cannot read {}: {e}", p.display())))
            };
            let ca = match &self.ca_file {
                Some(p) => read(p)?,
                None => {
                    return Err(BusError::Config(format!(
                        "broker {}: mqtts needs a CA file (`ca-file`)",
                        self.url
                    )));
                }
            };
            let client_auth = match &self.client_cert {
                Some((cert, key)) => Some((read(cert)?, read(key)?)),
                None => None,
            };
            mqtt.set_transport(Transport::tls(ca, client_auth, None));
        }
        Ok(mqtt)
    }
}

/// Small messages (readings, passages, confirmations) must leave at once: without
/// TCP_NODELAY a burst waits on the acknowledgement of the previous segment.
pub(crate) fn network_options() -> rumqttc::NetworkOptions {
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    network
}

/// A message received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its topic.
    pub topic: String,
    /// Its bytes.
    pub payload: Vec<u8>,
    /// It was retained by the broker.
    pub retained: bool,
}

/// What the connection is doing, for the daemon's status, alarms and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Connected (again).
    Connected,
    /// Disconnected, with why; the client reconnects by itself.
    Disconnected(String),
    /// The broker confirmed every subscription asked for so far.
    Subscribed,
    /// The broker refused a subscription, or did not confirm it in time; it is asked for
    /// again until it holds.
    SubscribeFailed {
        /// The filter.
        filter: String,
        /// Why.
        reason: String,
    },
}

/// The connection's state, as [`BusClient::status`] reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinkStatus {
    /// Connected to the broker now.
    pub connected: bool,
    /// Every subscription is confirmed by the broker on this connection.
    pub subscribed: bool,
    /// Connections made since start (1 after the first).
    pub connections: u64,
    /// Why the last connection ended, if one did.
    pub last_error: Option<String>,
    /// Messages [`BusClient::try_publish`] dropped because the broker was away or the queue
    /// was full.
    pub dropped: u64,
}

#[derive(Default)]
struct Subscriptions {
    /// Every filter asked for, made again on every connection that did not resume a session.
    filters: Vec<(String, QoS)>,
    /// SUBSCRIBE packets sent on this connection and not yet answered, oldest first, with
    /// their filters: the broker answers in order, one SUBACK per SUBSCRIBE.
    awaiting: std::collections::VecDeque<(Vec<String>, Instant)>,
    /// A subscribe request could not be queued; try again at the next event.
    retry: bool,
}

#[derive(Default)]
struct Shared {
    connected: AtomicBool,
    dropped: AtomicU64,
    subscriptions: Mutex<Subscriptions>,
    status: Mutex<LinkStatus>,
}

impl Shared {
    fn subs(&self) -> std::sync::MutexGuard<'_, Subscriptions> {
        self.subscriptions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn status(&self) -> std::sync::MutexGuard<'_, LinkStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A connected bus client. Cloning shares the connection.
#[derive(Clone)]
pub struct BusClient {
    client: AsyncClient,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BusClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusClient")
            .field("status", &*self.shared.status())
            .finish_non_exhaustive()
    }
}

pub(crate) fn parse_url(url: &str) -> Result<(bool, String, u16), BusError> {
    let bad = || {
        BusError::Config(format!(
            "broker {url:?}: expected `embedded`, `mqtt://host:port` or `mqtts://host:port`"
        ))
    };
    let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("mqtt://") {
        (false, r)
    } else {
        return Err(bad());
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
        None => (rest, if tls { 8883 } else { 1883 }),
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((tls, host.to_owned(), port))
}

/// Sends one SUBSCRIBE for `filters` and notes it as awaiting its SUBACK; on a full queue,
/// marks a retry.
fn send_subscribe(client: &AsyncClient, subs: &mut Subscriptions, filters: &[(String, QoS)]) {
    if filters.is_empty() {
        return;
    }
    let packet: Vec<SubscribeFilter> = filters
        .iter()
        .map(|(f, q)| SubscribeFilter::new(f.clone(), *q))
        .collect();
    match client.try_subscribe_many(packet) {
        Ok(()) => subs.awaiting.push_back((
            filters.iter().map(|(f, _)| f.clone()).collect(),
            Instant::now(),
        )),
        Err(e) => {
            tracing::debug!("subscribe request not queued ({e}); trying again");
            subs.retry = true;
        }
    }
}

impl BusClient {
    /// Connects (in the background: the first connection may come later) and returns the
    /// client, incoming messages and connection events.
    pub fn connect(
        options: &ClientOptions,
    ) -> Result<
        (
            BusClient,
            mpsc::Receiver<Message>,
            mpsc::UnboundedReceiver<Link>,
        ),
        BusError,
    > {
        let mut mqtt = options.mqtt(&options.client_id)?;
        if let Some((topic, payload)) = &options.last_will {
            mqtt.set_last_will(LastWill::new(
                topic,
                payload.clone(),
                QoS::AtLeastOnce,
                true,
            ));
        }
        let (client, mut eventloop) = AsyncClient::new(mqtt, 256);
        eventloop.set_network_options(network_options());
        let shared = Arc::new(Shared::default());
        let (messages_tx, messages) = mpsc::channel(1024);
        let (links_tx, links) = mpsc::unbounded_channel();
        let (task_client, task_shared) = (client.clone(), shared.clone());
        tokio::spawn(async move {
            let (client, shared) = (task_client, task_shared);
            let mut backoff = Duration::from_millis(100);
            let mut first = true;
            loop {
                let event = eventloop.poll().await;
                // Subscriptions are checked on every event: pings guarantee one at least
                // every keep-alive interval.
                {
                    let mut subs = shared.subs();
                    let stale = subs
                        .awaiting
                        .front()
                        .is_some_and(|(_, at)| at.elapsed() > SUBSCRIBE_TIMEOUT);
                    if stale {
                        for filter in subs.awaiting.iter().flat_map(|(f, _)| f.clone()) {
                            let _ = links_tx.send(Link::SubscribeFailed {
                                filter,
                                reason: format!(
                                    "not confirmed by the broker within {} s",
                                    SUBSCRIBE_TIMEOUT.as_secs()
                                ),
                            });
                        }
                        subs.awaiting.clear();
                        subs.retry = true;
                    }
                    if subs.retry && shared.connected.load(Ordering::Acquire) {
                        subs.retry = false;
                        let all = subs.filters.clone();
                        send_subscribe(&client, &mut subs, &all);
                    }
                }
                match event {
                    Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                        backoff = Duration::from_millis(100);
                        shared.connected.store(true, Ordering::Release);
                        {
                            let mut st = shared.status();
                            st.connected = true;
                            st.connections += 1;
                        }
                        // A broker that kept the session kept its subscriptions; any other
                        // gets them all again, in one SUBSCRIBE. The first connection sends
                        // them all anyway: they were asked for before it existed.
                        let mut subs = shared.subs();
                        subs.awaiting.clear();
                        if !ack.session_present || std::mem::take(&mut first) {
                            let all = subs.filters.clone();
                            send_subscribe(&client, &mut subs, &all);
                        }
                        let confirmed = subs.awaiting.is_empty() && !subs.retry;
                        drop(subs);
                        shared.status().subscribed = confirmed;
                        let _ = links_tx.send(Link::Connected);
                        if confirmed {
                            let _ = links_tx.send(Link::Subscribed);
                        }
                    }
                    Ok(Event::Incoming(Incoming::SubAck(ack))) => {
                        let mut subs = shared.subs();
                        let Some((filters, _)) = subs.awaiting.pop_front() else {
                            continue;
                        };
                        let mut refused = false;
                        for (filter, code) in filters.iter().zip(&ack.return_codes) {
                            if *code == SubscribeReasonCode::Failure {
                                refused = true;
                                let _ = links_tx.send(Link::SubscribeFailed {
                                    filter: filter.clone(),
                                    reason: "refused by the broker (check its ACL for this client)"
                                        .into(),
                                });
                            }
                        }
                        if refused {
                            subs.retry = true;
                        }
                        let confirmed = subs.awaiting.is_empty() && !subs.retry;
                        drop(subs);
                        let was = std::mem::replace(&mut shared.status().subscribed, confirmed);
                        if confirmed && !was {
                            let _ = links_tx.send(Link::Subscribed);
                        }
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        let m = Message {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                            retained: p.retain,
                        };
                        if messages_tx.send(m).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let why = e.to_string();
                        let was = shared.connected.swap(false, Ordering::AcqRel);
                        {
                            let mut st = shared.status();
                            st.connected = false;
                            st.subscribed = false;
                            st.last_error = Some(why.clone());
                        }
                        if was || backoff == Duration::from_millis(100) {
                            let _ = links_tx.send(Link::Disconnected(why));
                        }
                        if links_tx.is_closed() && messages_tx.is_closed() {
                            return;
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        });
        Ok((BusClient { client, shared }, messages, links))
    }

    /// Publishes a message, waiting for room in the connection's queue (not for the broker).
    /// Not for the daemon's own paths: use [`BusClient::try_publish`] there.
    pub async fn publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
        qos: QoS,
        retain: bool,
    ) -> Result<(), BusError> {
        self.client
            .publish(topic, qos, retain, payload)
            .await
            .map_err(|e| BusError::Client(format!("publish to {topic}: {e}")))
    }

    /// Publishes without waiting: while the broker is away or the queue is full the message is
    /// dropped, counted, and `Err` says why. Telemetry only: it may be lost.
    pub fn try_publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
        qos: QoS,
        retain: bool,
    ) -> Result<(), BusError> {
        let dropped = |why: &str| {
            let n = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            self.shared.status().dropped = n;
            BusError::Client(format!("{topic}: dropped ({why})"))
        };
        if !self.shared.connected.load(Ordering::Acquire) {
            return Err(dropped("the broker is not connected"));
        }
        self.client
            .try_publish(topic, qos, retain, payload)
            .map_err(|_| dropped("the connection's queue is full"))
    }

    /// Subscribes to a topic filter: now when connected, and again after every reconnection
    /// to a broker that lost the session, until the broker confirms it.
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<(), BusError> {
        let mut subs = self.shared.subs();
        if !subs.filters.iter().any(|(f, _)| f == filter) {
            subs.filters.push((filter.to_owned(), qos));
        }
        if self.shared.connected.load(Ordering::Acquire) {
            send_subscribe(&self.client, &mut subs, &[(filter.to_owned(), qos)]);
            self.shared.status().subscribed = false;
        }
        Ok(())
    }

    /// The connection's state now.
    pub fn status(&self) -> LinkStatus {
        self.shared.status().clone()
    }

    /// Disconnects cleanly (the last will is not published).
    pub async fn disconnect(&self) {
        let _ = self.client.disconnect().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://127.0.0.1:1883").unwrap(),
            (false, "127.0.0.1".into(), 1883)
        );
        assert_eq!(
            parse_url("mqtts://broker.site").unwrap(),
            (true, "broker.site".into(), 8883)
        );
        assert!(
            parse_url("tcp://x")
                .unwrap_err()
                .to_string()
                .contains("expected `embedded`")
        );
    }
}
