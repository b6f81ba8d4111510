//! The daemon: the only module that knows all the others. It starts the bus (the embedded
//! broker, supervised, or a connection to an external one), the store writer, the outbox
//! publisher, the device layer and the lanes, and routes between them:
//!
//! - device events ([`devices`]): readings straight to their lane, then telemetry on the bus,
//!   best effort (dropped and counted while the broker is away);
//! - requests from the bus ([`requests`]): operator actions, site actions, queries, device
//!   commands, platform records, receivers' confirmations; bad input refused with a reason;
//! - alarms ([`alarms`]): through the outbox, thinned when one floods.
//!
//! Nothing here waits on the broker: a lane keeps deciding and lifting its barrier with the
//! broker down for hours, and only bus messages wait (in the store's outbox, or dropped if they
//! are telemetry).

mod alarms;
mod devices;
mod messages;
mod queries;
mod requests;

pub use alarms::{AlarmAckReply, AlarmAckRequest, Alarms, answer_alarm_ack};
pub use messages::{
    CommandMessage, DaemonStatusMessage, DeviceStatusMessage, PlatformMessage, PlatformReport,
    ReadingMessage,
};
pub use queries::{QueryKind, QueryReply, QueryRequest, stored_alarms};

/// The daemon's runtime: a Tokio multi-thread runtime with `workers` worker threads (named
/// `kakou-daemon`), or [`default_workers`] when `None`.
///
/// Run [`run`] on it with `spawn`, not `block_on`: the future given to `block_on` runs on the
/// calling thread, and a router there would cost a thread switch for every device event.
pub fn runtime(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.unwrap_or_else(default_workers).max(1))
        .thread_name("kakou-daemon")
        .enable_all()
        .build()
}

/// Half the machine's cores, rounded up. The async tasks are plumbing (device links, lanes'
/// bookkeeping, the bus); the work that takes CPU runs beside them, on the store writer's
/// thread, on blocking threads for rules and in the broker's process. More workers than that
/// mostly wake each other: on a 2-core gate PC one worker decided a third more trucks per
/// CPU second than two (docs/benchmarks.md).
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().div_ceil(2))
        .unwrap_or(1)
}

/// Kept here for readers of earlier versions: the alarm body now lives with the bus.
pub use crate::bus::{AlarmMessage, RejectedMessage};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use kakou_plugin_sdk::model::Severity;
use tokio::sync::{mpsc, watch};

use crate::bus::broker::{BrokerEvent, SupervisedBroker};
use crate::bus::outbox::{self, OutboxOptions};
use crate::bus::payload::Envelope;
use crate::bus::{BusClient, BusError, ClientOptions, Link, QoS, Topics};
use crate::config::SiteManifest;
use crate::device::{DeviceError, DeviceEvent, DeviceLayer, now_ms};
use crate::lane::{Lane, LaneContext, LaneEvent, LaneSettings, RuleSet, spawn_lane};
use crate::plugin::{Runtime, RuntimeError};
use crate::store::{Store, Writer};

/// Why the daemon stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The devices could not start.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The plugin runtime could not start.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The site's rule set could not be loaded.
    #[error(transparent)]
    RuleSet(#[from] crate::lane::RuleSetError),
}

/// Message ids: unique per daemon run and per message.
pub(crate) struct Ids {
    prefix: String,
    next: u64,
}

impl Ids {
    pub(crate) fn next(&mut self) -> String {
        self.next += 1;
        format!("{}-{}", self.prefix, self.next)
    }
}

/// What the routing parts share.
pub(crate) struct Daemon {
    pub(crate) site: String,
    /// The external broker's URL; `None` for the embedded broker.
    pub(crate) external_broker: Option<String>,
    pub(crate) topics: Topics,
    pub(crate) store: Store,
    /// Every write of the daemon goes through it (lanes, alarms, operators' site actions,
    /// platform records): one durable commit shared by whoever writes at the time.
    pub(crate) writer: Writer,
    pub(crate) bus: BusClient,
    pub(crate) outbox: crate::bus::Outbox,
    pub(crate) lanes: HashMap<String, Lane>,
    /// What the lanes share: its rule set (the one in force, swaps included) declares the
    /// parameters site actions and platform records are checked against.
    pub(crate) lane_ctx: Option<Arc<LaneContext>>,
    pub(crate) lane_ids: Vec<String>,
    pub(crate) ids: Ids,
    pub(crate) alarms: Arc<std::sync::Mutex<Alarms>>,
    /// The last retained message per topic (device status), published again on every
    /// connection: one published while the broker was away was dropped, and a broker that
    /// restarted without persistence forgot the rest.
    pub(crate) retained: HashMap<String, Vec<u8>>,
}

impl Daemon {
    /// Publishes telemetry or a reply without waiting; a drop is counted by the client.
    pub(crate) fn telemetry<T: serde::Serialize>(
        &mut self,
        topic: &str,
        at_ms: i64,
        body: T,
        retain: bool,
    ) {
        let bytes = Envelope::new(self.ids.next(), at_ms, body).to_bytes();
        if retain {
            self.retained.insert(topic.to_owned(), bytes.clone());
        }
        if let Err(e) = self.bus.try_publish(topic, bytes, QoS::AtLeastOnce, retain) {
            tracing::debug!("{e}");
        }
    }

    /// Publishes every retained message again (see [`Daemon::retained`]).
    fn republish_retained(&mut self) {
        for (topic, bytes) in &self.retained {
            if let Err(e) = self
                .bus
                .try_publish(topic, bytes.clone(), QoS::AtLeastOnce, true)
            {
                tracing::debug!("{e}");
            }
        }
    }

    /// Raises an alarm through the outbox.
    pub(crate) fn alarm(
        &mut self,
        code: &str,
        lane: Option<&str>,
        device: Option<&str>,
        severity: Severity,
        message: String,
    ) {
        self.alarms_shared()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .raise(AlarmMessage {
                code: code.to_owned(),
                lane: lane.map(str::to_owned),
                device: device.map(str::to_owned),
                passage: None,
                severity,
                message,
            });
    }

    /// The alarm raiser, for handlers that run in tasks of their own.
    pub(crate) fn alarms_shared(&self) -> Arc<std::sync::Mutex<Alarms>> {
        self.alarms.clone()
    }

    /// The parameter catalogue of the rule set in force; none when the site decides nothing.
    pub(crate) fn catalog(&self) -> Option<crate::config::params::ParameterCatalog> {
        self.lane_ctx.as_ref().map(|c| {
            c.ruleset
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .catalog(&self.lane_ids)
        })
    }

    fn online(&mut self, state: &str) {
        let body = DaemonStatusMessage {
            state: state.into(),
            site: self.site.clone(),
        };
        let topic = self.topics.daemon_status();
        self.telemetry(&topic, now_ms(), body, true);
    }
}

/// Runs the daemon until `shutdown` turns true. `exe` is the `kakou` binary, used to start the
/// embedded broker.
pub async fn run(
    manifest: SiteManifest,
    exe: PathBuf,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), DaemonError> {
    let site = manifest.site.id.clone();
    let topics = Topics::new(&site);
    let mut ids = Ids {
        prefix: format!("{site}-{}", now_ms()),
        next: 0,
    };

    let (broker_tx, mut broker_events) = mpsc::unbounded_channel::<BrokerEvent>();
    let (broker, url) = if manifest.bus.broker == "embedded" {
        let mut addr = manifest.bus.listen;
        if addr.port() == 0 {
            let probe = std::net::TcpListener::bind(addr)
                .map_err(|e| BusError::Broker(format!("no free port on {}: {e}", addr.ip())))?;
            addr = probe
                .local_addr()
                .map_err(|e| BusError::Broker(e.to_string()))?;
        }
        let creds = manifest
            .bus
            .credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()));
        let b = SupervisedBroker::spawn(&exe, addr, creds, broker_tx)?;
        let url = b.url();
        tracing::info!("embedded broker listening on {url}");
        (Some(b), url)
    } else {
        drop(broker_tx);
        (None, manifest.bus.broker.clone())
    };

    let offline = Envelope::new(
        ids.next(),
        now_ms(),
        DaemonStatusMessage {
            state: "offline".into(),
            site: site.clone(),
        },
    );
    let mut options = ClientOptions::new(&url, &format!("kakou-{site}"));
    options.credentials = manifest.bus.credentials.clone();
    options.ca_file = manifest.bus.ca_file.clone();
    options.client_cert = manifest.bus.client_cert.clone();
    options.last_will = Some((topics.daemon_status(), offline.to_bytes()));
    let store = Store::open(&manifest.store.path)?;
    let writer = Writer::spawn(store.clone())?;
    // The parameter library's equipment item is the manifest's; a hot-swapped edit rewrites it.
    let equipment = manifest.clone();
    let files = writer
        .write(move |tx| tx.put_site_equipment(&equipment))
        .await?;
    tracing::info!("{files} equipment files written from the site manifest");
    let runtime = Runtime::new(Runtime::default_cache_dir())?;
    let ruleset = match manifest.ruleset_path() {
        Some(path) => Some(RuleSet::load(
            &runtime,
            &path,
            &manifest.site.plugins,
            &manifest.site.load_options(),
        )?),
        None => None,
    };
    let (bus, mut incoming, mut links) = BusClient::connect(&options)?;
    let (outbox, outbox_task) = outbox::publisher::start(
        store.clone(),
        writer.clone(),
        &options,
        topics.clone(),
        manifest.bus.confirm,
        OutboxOptions::default(),
        shutdown.clone(),
    )?;
    let root = topics.root().to_owned();
    for filter in [
        topics.outbox_ack(),
        topics.query(),
        topics.alarm_ack(),
        format!("{root}/lane/+/device/+/command"),
        topics.platform("records"),
    ] {
        bus.subscribe(&filter, QoS::AtLeastOnce).await?;
    }
    println!(
        "kakou: site {site} running; bus {url}; {} lanes",
        manifest.lanes.len()
    );

    let (events_tx, mut events) = mpsc::channel::<DeviceEvent>(4096);
    // A device whose driver is not installed yet waits for it: the hot swap brings it in.
    let waiting = crate::device::StartOptions {
        wait_for_missing_drivers: true,
    };
    let layer = Arc::new(DeviceLayer::start_with(&manifest, &runtime, events_tx, waiting).await?);

    // The lanes decide only when the site names its rule set; without one (the manifest then
    // says `gateway = true`) the daemon is a device gateway (readings and commands on the bus).
    let (lane_events_tx, mut lane_events) = mpsc::channel::<LaneEvent>(4096);
    let mut lanes: HashMap<String, Lane> = HashMap::new();
    let mut lane_ctx = None;
    let lane_ids: Vec<String> = manifest.lanes.iter().map(|l| l.id.clone()).collect();
    let mut lane_tasks = Vec::new();
    if let Some(ruleset) = ruleset {
        tracing::info!("rule set {} decides", ruleset.id());
        let ctx = Arc::new(LaneContext {
            site: site.clone(),
            office: manifest.site.office.clone(),
            store: store.clone(),
            writer: writer.clone(),
            ruleset: std::sync::RwLock::new(ruleset),
            outbox: outbox.clone(),
            events: lane_events_tx.clone(),
            observe: false,
        });
        for lane in &manifest.lanes {
            let barrier = match &lane.flow.barrier {
                Some(d) => Some(layer.commands(&lane.id, d)?),
                None => None,
            };
            let (handle, task) = spawn_lane(
                ctx.clone(),
                LaneSettings {
                    config: lane.clone(),
                    barrier,
                },
                shutdown.clone(),
            );
            lanes.insert(lane.id.clone(), handle);
            lane_ctx = Some(ctx.clone());
            lane_tasks.push(task);
        }
        for filter in [
            format!("{root}/lane/+/manual"),
            topics.control_order(),
            topics.parameter(),
        ] {
            bus.subscribe(&filter, QoS::AtLeastOnce).await?;
        }
    }
    drop(lane_events_tx);

    // Hot swap: plugin folders, the rule set file and this manifest are watched from here on.
    let (swap_tx, mut swap_events) = mpsc::channel::<crate::swap::SwapEvent>(256);
    let swap = crate::swap::spawn(
        crate::swap::SwapSetup::new(&manifest, &runtime, &layer, lane_ctx.clone())
            .with_writer(writer.clone()),
        swap_tx,
        shutdown.clone(),
    );

    let alarms = Arc::new(std::sync::Mutex::new(Alarms::new(
        writer.clone(),
        outbox.clone(),
        ids.next(),
    )));
    let mut d = Daemon {
        external_broker: (manifest.bus.broker != "embedded").then(|| url.clone()),
        site: site.clone(),
        topics,
        store,
        writer,
        bus,
        outbox,
        lanes,
        lane_ctx,
        lane_ids,
        ids,
        alarms,
        retained: HashMap::new(),
    };
    loop {
        tokio::select! {
            Some(e) = events.recv() => devices::on_event(&mut d, e).await,
            Some(e) = lane_events.recv() => devices::on_lane_event(&mut d, e),
            Some(e) = swap_events.recv() => {
                let where_ = e.device();
                d.alarm(
                    e.code(),
                    where_.map(|(l, _)| l),
                    where_.map(|(_, dev)| dev),
                    e.severity(),
                    e.to_string(),
                );
            }
            Some(m) = incoming.recv() => requests::on_message(&mut d, &layer, m),
            Some(link) = links.recv() => on_link(&mut d, link),
            Some(e) = broker_events.recv() => {
                let (code, severity, message) = match e {
                    BrokerEvent::Restarted { exit, restarts } => (
                        "bus.broker-restarted",
                        Severity::Critical,
                        format!("the embedded broker ended ({exit}) and was started again (restart {restarts}); lanes kept deciding, bus messages waited in the outbox"),
                    ),
                    BrokerEvent::RestartFailed { reason } => (
                        "bus.broker-down",
                        Severity::Critical,
                        format!("the embedded broker ended and cannot be started again yet: {reason}; retrying"),
                    ),
                };
                d.alarm(code, None, None, severity, message);
            }
            _ = crate::device::transport::stopped(&mut shutdown) => break,
        }
    }
    d.online("offline");
    drop(d.lanes);
    for t in lane_tasks {
        let _ = t.await;
    }
    swap.abort();
    if let Ok(layer) = Arc::try_unwrap(layer) {
        layer.shutdown().await;
    }
    // The publisher sees the shutdown at its next turn; wake it for one.
    d.outbox.wake();
    let _ = outbox_task.await;
    // Give the last publishes a moment to leave before the connection closes.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    d.bus.disconnect().await;
    if let Some(b) = broker {
        b.stop();
    }
    Ok(())
}

/// The main connection's events: status on every connection, alarms when subscriptions fail.
fn on_link(d: &mut Daemon, link: Link) {
    match link {
        Link::Connected => {
            tracing::info!("bus connected");
            d.republish_retained();
            d.online("online");
        }
        // An external broker can only be found unreachable while running: say so loudly,
        // with what to check, since nothing on the bus is heard until it is back.
        Link::Disconnected(why) => match &d.external_broker {
            Some(url) => tracing::error!(
                "bus: cannot reach the broker {url}: {why}. The lanes go on deciding and \
                 passages and alarms wait in the outbox, but nothing reaches the bus and no \
                 operator request or command is received until it is back. Check that the \
                 broker runs and that this PC reaches it (address and port in [bus] `broker`, \
                 firewall, credentials, TLS files); retrying"
            ),
            None => tracing::warn!("bus disconnected: {why}"),
        },
        Link::Subscribed => tracing::info!("bus subscriptions confirmed"),
        Link::SubscribeFailed { filter, reason } => d.alarm(
            "bus.subscribe",
            None,
            None,
            Severity::Critical,
            format!(
                "subscription to {filter} does not hold: {reason}; operator requests, commands \
                 or confirmations on it are not received until it does (retrying)"
            ),
        ),
    }
}
