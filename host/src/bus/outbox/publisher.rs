//! The outbox publisher: one task, one MQTT connection of its own, every message's state.
//!
//! The task alone drives its connection's event loop, so what it publishes and what the broker
//! acknowledges are seen in one place, in order. Each message in flight gets a packet id from
//! the publisher's own pool (1..=window) and is handed straight to the event loop's queue of
//! pending requests; a PUBACK then names exactly one message, and a publish replayed by the
//! MQTT client after a reconnection keeps its packet id and so its message. When the broker
//! did not keep the session, every message in flight is queued again.
//!
//! The event loop only returns when something happens on the connection, so new work (a
//! message committed, a receiver's confirmation, a report asked for) is announced by a QoS 0
//! publish with no payload on `kakou-nudge/{site}/outbox` through the connection's own queue
//! ([`Nudge`]), sent only when the task is waiting on the event loop. It is outside the site's
//! `kakou/{site}/#` tree, so subscribers to the site never see it; no one subscribes to it and
//! the broker drops it.
//!
//! Store writes (delivered, broker-acknowledged, attempts) are sent to the store writer and
//! never awaited here: each is idempotent, so their order does not matter, and the connection
//! is never held up by a commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, Incoming, Outgoing, Publish, QoS, Request};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{Outbox, OutboxItem, OutboxOptions, OutboxReport, Stage, Work};
use crate::bus::client::{ClientOptions, network_options};
use crate::bus::{BusError, Topics};
use crate::device::now_ms;
use crate::store::{Confirm, OutboxMessage, Store, StoreError, Writer};

/// Announces new work to a publisher waiting on its event loop (see the module doc).
pub(crate) struct Nudge {
    parked: AtomicBool,
    client: AsyncClient,
    topic: String,
}

impl std::fmt::Debug for Nudge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nudge").field("topic", &self.topic).finish()
    }
}

impl Nudge {
    pub(crate) fn nudge(&self) {
        if self.parked.swap(false, Ordering::AcqRel) {
            // A full queue already holds a request that will wake the loop.
            let _ = self
                .client
                .try_publish(&self.topic, QoS::AtMostOnce, false, Vec::new());
        }
    }
}

/// Starts the publisher on its own connection (client id `{client_id}-outbox`, resuming its
/// session) and returns the handle and the task, which ends on `shutdown`.
pub fn start(
    store: Store,
    writer: Writer,
    options: &ClientOptions,
    topics: Topics,
    confirm: Confirm,
    outbox: OutboxOptions,
    shutdown: watch::Receiver<bool>,
) -> Result<(Outbox, JoinHandle<()>), BusError> {
    let window = outbox.window.max(1);
    let mut mqtt = options.mqtt(&format!("{}-outbox", options.client_id))?;
    mqtt.set_inflight(window);
    let (client, mut eventloop) = AsyncClient::new(mqtt, 16);
    eventloop.set_network_options(network_options());
    let nudge = Arc::new(Nudge {
        parked: AtomicBool::new(false),
        client,
        topic: format!("kakou-nudge/{}/outbox", topics.site()),
    });
    let (work_tx, work) = mpsc::unbounded_channel();
    let handle = Outbox {
        topics,
        confirm,
        work: work_tx,
        nudge: Some(nudge.clone()),
    };
    let publisher = Publisher {
        store,
        writer,
        eventloop,
        nudge,
        work,
        shutdown,
        options: outbox,
        free: (1..=window).rev().collect(),
        by_pkid: HashMap::new(),
        by_message: HashMap::new(),
        loaded: BTreeMap::new(),
        last_loaded: 0,
        more_in_store: true,
        connected: false,
        last_error: None,
        delivered: 0,
        publishes: 0,
        writes: Writes::default(),
    };
    Ok((handle, tokio::spawn(publisher.run())))
}

/// A message the publisher holds: queued (with its bytes) or published (bytes dropped; read
/// again from the store for a resend).
struct Held {
    message_id: String,
    topic: String,
    confirm: Confirm,
    created_ms: i64,
    /// The message, while queued and loaded.
    message: Option<OutboxMessage>,
    stage: Stage,
    pkid: Option<u16>,
    attempts: u32,
    since: Instant,
    last_error: Option<String>,
}

/// Store changes collected during one turn of the loop.
#[derive(Default)]
struct Writes {
    delivered: Vec<u64>,
    broker_acked: Vec<u64>,
    attempted: Vec<(u64, u32, Option<String>)>,
}

struct Publisher {
    store: Store,
    writer: Writer,
    eventloop: EventLoop,
    nudge: Arc<Nudge>,
    work: mpsc::UnboundedReceiver<Work>,
    shutdown: watch::Receiver<bool>,
    options: OutboxOptions,
    /// Packet ids not in use.
    free: Vec<u16>,
    /// Packet id → outbox id, for messages in flight.
    by_pkid: HashMap<u16, u64>,
    /// Envelope id → outbox id, for messages whose receivers confirm.
    by_message: HashMap<String, u64>,
    /// Every message held, by outbox id.
    loaded: BTreeMap<u64, Held>,
    /// Highest outbox id read from the store.
    last_loaded: u64,
    /// The store may hold messages above `last_loaded`.
    more_in_store: bool,
    connected: bool,
    last_error: Option<String>,
    delivered: u64,
    publishes: u64,
    writes: Writes,
}

impl Publisher {
    async fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            while let Ok(w) = self.work.try_recv() {
                self.on_work(w);
            }
            if *self.shutdown.borrow() {
                break;
            }
            self.load();
            self.expire();
            if self.connected {
                self.inject();
            }
            self.flush_writes();
            // Park: a nudge from now on wakes the event loop; work sent before is seen here.
            self.nudge.parked.store(true, Ordering::Release);
            if !self.work.is_empty() {
                self.nudge.parked.store(false, Ordering::Release);
                continue;
            }
            let event = self.eventloop.poll().await;
            self.nudge.parked.store(false, Ordering::Release);
            match event {
                Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                    backoff = Duration::from_millis(100);
                    self.connected = true;
                    if !ack.session_present {
                        self.session_lost();
                    }
                    tracing::info!(
                        session = ack.session_present,
                        "outbox: connected to the broker"
                    );
                }
                Ok(Event::Incoming(Incoming::PubAck(ack))) => self.on_puback(ack.pkid),
                Ok(Event::Outgoing(Outgoing::AwaitAck(pkid))) => {
                    // Cannot happen with packet ids from our own pool; say so if it does.
                    tracing::error!("outbox: the MQTT client holds packet id {pkid} back");
                }
                Ok(_) => {}
                Err(e) => {
                    let why = e.to_string();
                    if self.connected {
                        tracing::warn!("outbox: connection to the broker lost: {why}");
                    }
                    self.connected = false;
                    for h in self
                        .loaded
                        .values_mut()
                        .filter(|h| h.stage == Stage::InFlight)
                    {
                        h.last_error = Some(why.clone());
                    }
                    self.last_error = Some(why);
                    self.flush_writes();
                    // Wait before reconnecting, but keep answering.
                    let sleep = tokio::time::sleep(backoff);
                    tokio::pin!(sleep);
                    loop {
                        tokio::select! {
                            _ = &mut sleep => break,
                            w = self.work.recv() => match w {
                                Some(w) => self.on_work(w),
                                None => return,
                            },
                            _ = crate::device::transport::stopped(&mut self.shutdown) => return,
                        }
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        self.flush_writes();
    }

    fn on_work(&mut self, work: Work) {
        match work {
            Work::Wake => self.more_in_store = true,
            Work::Confirmed(message_id) => {
                let Some(id) = self.by_message.remove(&message_id) else {
                    // Confirmed before (a repeat), or not loaded yet: it is published again
                    // and confirmed again.
                    tracing::debug!("outbox: confirmation of {message_id}, not awaited");
                    return;
                };
                // Confirmed before its PUBACK came, perhaps: the PUBACK then only frees the
                // packet id.
                self.loaded.remove(&id);
                self.delivered += 1;
                self.writes.delivered.push(id);
            }
            Work::Report(reply) => {
                let _ = reply.send(self.report());
            }
        }
    }

    /// Reads messages above `last_loaded` while fewer than a window's worth are queued.
    fn load(&mut self) {
        let window = usize::from(self.options.window.max(1));
        while self.more_in_store {
            let queued = self
                .loaded
                .values()
                .filter(|h| h.stage == Stage::Queued)
                .count();
            if queued >= window {
                return;
            }
            let batch = window * 2;
            let entries = match self
                .store
                .snapshot()
                .and_then(|s| s.outbox_after(self.last_loaded, batch))
            {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!("outbox: cannot read the store: {e}");
                    return;
                }
            };
            self.more_in_store = entries.len() == batch;
            for entry in entries {
                self.last_loaded = self.last_loaded.max(entry.id);
                let m = entry.message;
                if m.confirm == Confirm::Receiver {
                    self.by_message.insert(m.message_id.clone(), entry.id);
                }
                self.loaded.insert(
                    entry.id,
                    Held {
                        message_id: m.message_id.clone(),
                        topic: m.topic.clone(),
                        confirm: m.confirm,
                        created_ms: m.created_ms,
                        attempts: m.attempts,
                        last_error: m.last_error.clone(),
                        message: Some(m),
                        stage: Stage::Queued,
                        pkid: None,
                        since: Instant::now(),
                    },
                );
            }
        }
    }

    /// Messages whose receivers stayed silent past the timeout are queued again.
    fn expire(&mut self) {
        let timeout = self.options.receiver_timeout;
        for h in self.loaded.values_mut() {
            if h.stage == Stage::BrokerAcked && h.since.elapsed() >= timeout {
                h.stage = Stage::Queued;
                h.last_error = Some(format!(
                    "the receiver did not confirm within {} s of the broker",
                    timeout.as_secs()
                ));
            }
        }
    }

    /// Hands queued messages to the event loop, oldest first, while packet ids are free.
    fn inject(&mut self) {
        let ids: Vec<u64> = self
            .loaded
            .iter()
            .filter(|(_, h)| h.stage == Stage::Queued)
            .map(|(id, _)| *id)
            .take(self.free.len())
            .collect();
        for id in ids {
            let Some(pkid) = self.free.pop() else { return };
            let Some(h) = self.loaded.get_mut(&id) else {
                self.free.push(pkid);
                continue;
            };
            let message = match h.message.take() {
                Some(m) => m,
                None => match self.store.snapshot().and_then(|s| s.outbox_message(id)) {
                    Ok(Some(m)) if m.delivered_ms.is_none() => m,
                    // Delivered meanwhile (a late confirmation), or gone.
                    Ok(_) => {
                        self.free.push(pkid);
                        let h = self.loaded.remove(&id);
                        if let Some(h) = h {
                            self.by_message.remove(&h.message_id);
                        }
                        continue;
                    }
                    Err(e) => {
                        tracing::error!("outbox: cannot read message {id}: {e}");
                        self.free.push(pkid);
                        return;
                    }
                },
            };
            let mut publish = Publish::new(&message.topic, QoS::AtLeastOnce, message.payload);
            publish.pkid = pkid;
            self.eventloop.pending.push_back(Request::Publish(publish));
            h.stage = Stage::InFlight;
            h.pkid = Some(pkid);
            h.attempts += 1;
            h.since = Instant::now();
            self.by_pkid.insert(pkid, id);
            self.publishes += 1;
            if h.attempts > 1 {
                self.writes
                    .attempted
                    .push((id, h.attempts, h.last_error.clone()));
            }
        }
    }

    fn on_puback(&mut self, pkid: u16) {
        let Some(id) = self.by_pkid.remove(&pkid) else {
            tracing::warn!("outbox: PUBACK for packet id {pkid}, which is not in flight");
            return;
        };
        self.free.push(pkid);
        let Some(h) = self.loaded.get_mut(&id) else {
            // Confirmed by its receiver before the broker's PUBACK.
            return;
        };
        h.pkid = None;
        match h.confirm {
            Confirm::Broker => {
                self.loaded.remove(&id);
                self.delivered += 1;
                self.writes.delivered.push(id);
            }
            Confirm::Receiver => {
                h.stage = Stage::BrokerAcked;
                h.since = Instant::now();
                h.last_error = None;
                self.writes.broker_acked.push(id);
            }
        }
    }

    /// The broker kept no session: what was in flight is gone with it, and is queued again
    /// with fresh packet ids. (The MQTT client dropped its pending publishes too.)
    fn session_lost(&mut self) {
        self.eventloop.pending.clear();
        for (_, id) in self.by_pkid.drain() {
            if let Some(h) = self.loaded.get_mut(&id) {
                h.stage = Stage::Queued;
                h.pkid = None;
                h.last_error = Some("the broker lost the session; published again".into());
            }
        }
        let window = self.options.window.max(1);
        self.free = (1..=window).rev().collect();
    }

    fn flush_writes(&mut self) {
        let w = std::mem::take(&mut self.writes);
        if w.delivered.is_empty() && w.broker_acked.is_empty() && w.attempted.is_empty() {
            return;
        }
        let writer = self.writer.clone();
        tokio::spawn(async move {
            let now = now_ms();
            // Lost in a crash, these only cost a resend: no fsync of their own.
            let result = writer
                .write_lazy(move |tx| {
                    for &id in &w.delivered {
                        tx.outbox_deliver(id, now)?;
                    }
                    for &id in &w.broker_acked {
                        tx.outbox_broker_acked(id, now)?;
                    }
                    for (id, attempts, error) in &w.attempted {
                        tx.outbox_attempted(*id, *attempts, now, error.as_deref())?;
                    }
                    Ok::<_, StoreError>(())
                })
                .await;
            if let Err(e) = result {
                // The messages stay in the outbox and are published again: a repeat, never a
                // loss.
                tracing::error!("outbox: cannot record delivery state: {e}");
            }
        });
    }

    fn report(&self) -> OutboxReport {
        let now = now_ms();
        let count = |stage| self.loaded.values().filter(|h| h.stage == stage).count() as u64;
        let stored = self
            .store
            .snapshot()
            .and_then(|s| s.outbox_len())
            .unwrap_or(0);
        let held = self.loaded.len() as u64;
        OutboxReport {
            connected: self.connected,
            queued: count(Stage::Queued) + stored.saturating_sub(held),
            in_flight: count(Stage::InFlight),
            broker_acked: count(Stage::BrokerAcked),
            oldest_age_ms: self.loaded.values().next().map(|h| now - h.created_ms),
            delivered: self.delivered,
            publishes: self.publishes,
            last_error: self.last_error.clone(),
            messages: self
                .loaded
                .iter()
                .take(100)
                .map(|(id, h)| OutboxItem {
                    id: *id,
                    message_id: h.message_id.clone(),
                    topic: h.topic.clone(),
                    stage: h.stage,
                    confirm: h.confirm,
                    attempts: h.attempts,
                    age_ms: now - h.created_ms,
                    last_error: h.last_error.clone(),
                })
                .collect(),
        }
    }
}
