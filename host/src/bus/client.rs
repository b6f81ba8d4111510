//! The bus client every part of the daemon uses, in both modes (embedded or external broker):
//! rumqttc with reconnection, session resumption, a last will, and incoming messages routed to
//! a channel.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Incoming, LastWill, MqttOptions, Outgoing, QoS, Transport};
use tokio::sync::mpsc;

use super::BusError;

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

/// What the connection is doing, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Connected (again).
    Connected,
    /// Disconnected, with why; the client reconnects by itself.
    Disconnected(String),
    /// The broker acknowledged a tracked QoS 1 publish.
    Acked(String),
}

/// A connected bus client. Cloning shares the connection.
#[derive(Clone, Debug)]
pub struct BusClient {
    client: AsyncClient,
    tracked: mpsc::UnboundedSender<Option<String>>,
    /// Subscriptions, made again on every (re)connection: a restarted broker may have
    /// forgotten the session.
    subscriptions: Arc<Mutex<Vec<(String, QoS)>>>,
}

fn parse_url(url: &str) -> Result<(bool, String, u16), BusError> {
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
        let (tls, host, port) = parse_url(&options.url)?;
        let mut mqtt = MqttOptions::new(&options.client_id, host, port);
        mqtt.set_keep_alive(Duration::from_secs(10))
            .set_clean_session(options.clean_session)
            .set_max_packet_size(1 << 20, 1 << 20)
            .set_inflight(100);
        if let Some((u, p)) = &options.credentials {
            mqtt.set_credentials(u, p);
        }
        if let Some((topic, payload)) = &options.last_will {
            mqtt.set_last_will(LastWill::new(
                topic,
                payload.clone(),
                QoS::AtLeastOnce,
                true,
            ));
        }
        if tls {
            let read = |p: &PathBuf| {
                std::fs::read(p)
                    .map_err(|e| BusError::Config(format!("cannot read {}: {e}", p.display())))
            };
            let ca = match &options.ca_file {
                Some(p) => read(p)?,
                None => {
                    return Err(BusError::Config(format!(
                        "broker {}: mqtts needs a CA file (`ca-file`)",
                        options.url
                    )));
                }
            };
            let client_auth = match &options.client_cert {
                Some((cert, key)) => Some((read(cert)?, read(key)?)),
                None => None,
            };
            mqtt.set_transport(Transport::tls(ca, client_auth, None));
        }
        let (client, mut eventloop) = AsyncClient::new(mqtt, 256);
        // Small messages (readings, passages, confirmations) must leave at once: without
        // TCP_NODELAY a burst waits on the acknowledgement of the previous segment.
        let mut network = rumqttc::NetworkOptions::new();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        let subscriptions: Arc<Mutex<Vec<(String, QoS)>>> = Arc::default();
        let (resubscriber, subscribed) = (client.clone(), subscriptions.clone());
        let (messages_tx, messages) = mpsc::channel(1024);
        let (links_tx, links) = mpsc::unbounded_channel();
        let (tracked, mut tracked_rx) = mpsc::unbounded_channel::<Option<String>>();
        tokio::spawn(async move {
            // Publishes leave in the order they were asked for; the n-th outgoing publish is
            // the n-th request, which maps packet ids to message ids.
            let mut order: VecDeque<Option<String>> = VecDeque::new();
            let mut inflight: HashMap<u16, String> = HashMap::new();
            let mut backoff = Duration::from_millis(100);
            let mut connected_before = false;
            loop {
                while let Ok(t) = tracked_rx.try_recv() {
                    order.push_back(t);
                }
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                        backoff = Duration::from_millis(100);
                        // The first connection carries the subscriptions asked for so far; a
                        // reconnection to a broker that kept the session needs none.
                        let again = connected_before && !ack.session_present;
                        connected_before = true;
                        let filters = if again {
                            subscribed.lock().map(|s| s.clone()).unwrap_or_default()
                        } else {
                            Vec::new()
                        };
                        for (filter, qos) in filters {
                            if let Err(e) = resubscriber.try_subscribe(&filter, qos) {
                                tracing::warn!("cannot subscribe again to {filter}: {e}");
                            }
                        }
                        let _ = links_tx.send(Link::Connected);
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
                    Ok(Event::Incoming(Incoming::PubAck(ack))) => {
                        if let Some(id) = inflight.remove(&ack.pkid) {
                            let _ = links_tx.send(Link::Acked(id));
                        }
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                        while let Ok(t) = tracked_rx.try_recv() {
                            order.push_back(t);
                        }
                        // A resend after reconnect reuses its packet id and was already counted.
                        let fresh = pkid == 0 || !inflight.contains_key(&pkid);
                        if fresh
                            && let Some(Some(id)) = order.pop_front()
                            && pkid != 0
                        {
                            inflight.insert(pkid, id);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = links_tx.send(Link::Disconnected(e.to_string()));
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        });
        Ok((
            BusClient {
                client,
                tracked,
                subscriptions,
            },
            messages,
            links,
        ))
    }

    /// Publishes a message.
    pub async fn publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
        qos: QoS,
        retain: bool,
    ) -> Result<(), BusError> {
        let _ = self.tracked.send(None);
        self.client
            .publish(topic, qos, retain, payload)
            .await
            .map_err(|e| BusError::Client(format!("publish to {topic}: {e}")))
    }

    /// Publishes with QoS 1 and reports [`Link::Acked`] with `id` when the broker has it.
    pub async fn publish_tracked(
        &self,
        id: &str,
        topic: &str,
        payload: Vec<u8>,
    ) -> Result<(), BusError> {
        let _ = self.tracked.send(Some(id.to_owned()));
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|e| BusError::Client(format!("publish to {topic}: {e}")))
    }

    /// Subscribes to a topic filter.
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<(), BusError> {
        if let Ok(mut s) = self.subscriptions.lock() {
            s.push((filter.to_owned(), qos));
        }
        self.client
            .subscribe(filter, qos)
            .await
            .map_err(|e| BusError::Client(format!("subscribe to {filter}: {e}")))
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
