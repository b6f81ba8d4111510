//! The daemon: the only module that knows all the others. It starts the bus (the embedded
//! broker or a connection to an external one), the device layer, and wires them: device
//! events out to their topics, commands in from theirs, bad input refused with a reason.

mod queries;

pub use queries::{QueryKind, QueryReply, QueryRequest};

use std::path::PathBuf;

use kakou_plugin_sdk::model::{Command, Reading, Severity};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use tokio::sync::{Notify, mpsc, watch};

use crate::bus::broker::EmbeddedBroker;
use crate::bus::payload::{self, Envelope};
use crate::bus::{BusClient, BusError, ClientOptions, QoS, Topics, outbox};
use crate::config::SiteManifest;
use crate::device::{DeviceError, DeviceEvent, DeviceEventKind, DeviceLayer, now_ms};
use crate::lane::{
    Lane, LaneContext, LaneEvent, LaneInput, LaneSettings, OperatorReply, OperatorRequest, RuleSet,
    SiteRequest, apply_site_action, spawn_lane,
};
use crate::plugin::{Runtime, RuntimeError};
use crate::store::{ApplyOptions, Record, Store};
use std::collections::HashMap;

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

/// A reading on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadingMessage {
    /// Lane id.
    pub lane: String,
    /// Device id.
    pub device: String,
    /// The reading.
    pub reading: Reading,
}

/// A device's status on the bus (retained).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceStatusMessage {
    /// Lane id.
    pub lane: String,
    /// Device id.
    pub device: String,
    /// `online` or `offline`.
    pub state: String,
    /// Why.
    pub reason: String,
}

/// A command for a device, as operators and the lane engine send it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandMessage {
    /// The command.
    pub command: Command,
    /// Who asked.
    #[serde(default)]
    pub operator: Option<String>,
}

/// The daemon's own status (retained; the last will says `offline`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatusMessage {
    /// `online` or `offline`.
    pub state: String,
    /// Site id.
    pub site: String,
}

/// An alarm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmMessage {
    /// Alarm code.
    pub code: String,
    /// Lane, when it concerns one.
    pub lane: Option<String>,
    /// Device, when it concerns one.
    pub device: Option<String>,
    /// Passage, when it concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passage: Option<String>,
    /// `info`, `warning` or `critical`.
    #[serde(default = "warning")]
    pub severity: Severity,
    /// What happened.
    pub message: String,
}

fn warning() -> Severity {
    Severity::Warning
}

/// Input refused, echoed for the sender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedMessage {
    /// The topic it came on.
    pub topic: String,
    /// Why.
    pub reason: String,
}

/// Platform data pushed by the site platform: registrations, documents, control orders,
/// parameters, each a JSON object with its `kind` (as `kakou data import` reads them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformMessage {
    /// The records, applied all or nothing.
    pub records: Vec<serde_json::Value>,
}

/// What became of a platform message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformReport {
    /// The platform message's id.
    pub message: String,
    /// The records were written.
    pub applied: bool,
    /// Records received.
    pub records: u64,
    /// Why records were refused: `record N: field: reason`.
    pub rejected: Vec<String>,
}

/// Message ids: unique per daemon run and per message.
struct Ids {
    prefix: String,
    next: u64,
}

impl Ids {
    fn next(&mut self) -> String {
        self.next += 1;
        format!("{}-{}", self.prefix, self.next)
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
        let b = EmbeddedBroker::spawn(&exe, addr, creds)?;
        let url = b.url();
        tracing::info!("embedded broker listening on {url}");
        (Some(b), url)
    } else {
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
    if let Some(dir) = manifest.store.path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let store = Store::open(&manifest.store.path)?;
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
    let (bus, mut incoming, links) = BusClient::connect(&options)?;
    let wake = Arc::new(Notify::new());
    let (acks_tx, acks) = mpsc::unbounded_channel();
    let outbox = tokio::spawn(outbox::run(
        store.clone(),
        bus.clone(),
        links,
        acks,
        wake.clone(),
        shutdown.clone(),
        outbox::OutboxOptions::default(),
    ));
    bus.subscribe(&topics.outbox_ack(), QoS::AtLeastOnce)
        .await?;
    bus.subscribe(&topics.query(), QoS::AtLeastOnce).await?;
    let command_filter = format!("{}/lane/+/device/+/command", topics.root());
    bus.subscribe(&command_filter, QoS::AtLeastOnce).await?;
    bus.subscribe(&topics.platform("records"), QoS::AtLeastOnce)
        .await?;
    let online = Envelope::new(
        ids.next(),
        now_ms(),
        DaemonStatusMessage {
            state: "online".into(),
            site: site.clone(),
        },
    );
    bus.publish(
        &topics.daemon_status(),
        online.to_bytes(),
        QoS::AtLeastOnce,
        true,
    )
    .await?;
    println!(
        "kakou: site {site} running; bus {url}; {} lanes",
        manifest.lanes.len()
    );

    let (events_tx, mut events) = mpsc::channel::<DeviceEvent>(4096);
    // A device whose driver is not installed yet waits for it: the hot swap brings it in.
    let waiting = crate::device::StartOptions {
        wait_for_missing_drivers: true,
    };
    let layer = DeviceLayer::start_with(&manifest, &runtime, events_tx, waiting).await?;

    // The lanes decide only when the site names its rule set; without one the daemon is a
    // device gateway (readings and commands on the bus).
    let (lane_events_tx, mut lane_events) = mpsc::channel::<LaneEvent>(4096);
    let mut lanes: HashMap<String, Lane> = HashMap::new();
    let mut lane_ctx = None;
    // Site actions are checked against the parameter catalogue of the rule set in force.
    let mut site_ctx = None;
    let lane_ids: Vec<String> = manifest.lanes.iter().map(|l| l.id.clone()).collect();
    let mut lane_tasks = Vec::new();
    if let Some(ruleset) = ruleset {
        tracing::info!("rule set {} decides", ruleset.id());
        let ctx = Arc::new(LaneContext {
            site: site.clone(),
            office: manifest.site.office.clone(),
            store: store.clone(),
            ruleset: std::sync::RwLock::new(ruleset),
            topics: topics.clone(),
            outbox_wake: wake.clone(),
            confirm: manifest.bus.confirm,
            events: lane_events_tx.clone(),
        });
        site_ctx = Some(ctx.clone());
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
        bus.subscribe(
            &format!("{}/lane/+/manual", topics.root()),
            QoS::AtLeastOnce,
        )
        .await?;
        bus.subscribe(&topics.control_order(), QoS::AtLeastOnce)
            .await?;
        bus.subscribe(&topics.parameter(), QoS::AtLeastOnce).await?;
    }
    drop(lane_events_tx);

    // Hot swap: plugin folders, the rule set file and this manifest are watched from here on.
    let (swap_tx, mut swap_events) = mpsc::channel::<crate::swap::SwapEvent>(256);
    let swap = crate::swap::spawn(
        crate::swap::SwapSetup::new(&manifest, &runtime, &layer, lane_ctx),
        swap_tx,
        shutdown.clone(),
    );

    loop {
        tokio::select! {
            Some(e) = events.recv() => {
                if let DeviceEventKind::Reading { reading } = &e.kind
                    && let Some(lane) = lanes.get(&*e.lane)
                {
                    let input = LaneInput::Reading {
                        device: e.device.to_string(),
                        reading: reading.clone(),
                        at_ms: e.at_ms,
                    };
                    let _ = lane.inputs.send(input).await;
                }
                publish_event(&bus, &topics, &mut ids, e).await;
            }
            Some(e) = lane_events.recv() => publish_lane_event(&bus, &topics, &mut ids, e).await,
            Some(e) = swap_events.recv() => {
                let alarm = AlarmMessage {
                    code: e.code().into(),
                    lane: e.device().map(|(l, _)| l.to_owned()),
                    device: e.device().map(|(_, d)| d.to_owned()),
                    passage: None,
                    severity: e.severity(),
                    message: e.to_string(),
                };
                let bytes = Envelope::new(ids.next(), now_ms(), alarm).to_bytes();
                if let Err(err) = bus.publish(&topics.alarm(), bytes, QoS::AtLeastOnce, false).await {
                    tracing::warn!("{err}");
                }
            }
            Some(m) = incoming.recv() => {
                let handled = if m.topic == topics.platform("records") {
                    handle_platform(&store, &bus, &topics, &mut ids, &m.topic, &m.payload).await
                } else if m.topic.ends_with("/manual") {
                    handle_operator(&lanes, &topics, &m.topic, &m.payload).await
                } else if m.topic == topics.control_order() || m.topic == topics.parameter() {
                    let catalog = site_ctx
                        .as_ref()
                        .map(|c: &Arc<LaneContext>| {
                            c.ruleset.read().unwrap_or_else(|e| e.into_inner()).catalog(&lane_ids)
                        })
                        .unwrap_or_default();
                    handle_site_action(&store, &catalog, &bus, &mut ids, &m.topic, &m.payload).await
                } else if m.topic == topics.query() {
                    handle_query(&store, &bus, &mut ids, &m.topic, &m.payload).await
                } else if m.topic == topics.outbox_ack() {
                    payload::parse::<outbox::AckMessage>(&m.topic, &m.payload)
                        .map(|a| { let _ = acks_tx.send(a.body.acknowledges); })
                        .map_err(|e| e.to_string())
                } else {
                    handle_command(&layer, &topics, &m.topic, &m.payload).await
                };
                if let Err(reason) = handled {
                    tracing::warn!(topic = %m.topic, "{reason}");
                    let rejected = Envelope::new(ids.next(), now_ms(), RejectedMessage { topic: m.topic.clone(), reason: reason.clone() });
                    let _ = bus.publish(&topics.rejected(), rejected.to_bytes(), QoS::AtLeastOnce, false).await;
                    let alarm = Envelope::new(ids.next(), now_ms(), AlarmMessage { code: "bus.rejected".into(), lane: None, device: None, passage: None, severity: Severity::Warning, message: reason });
                    let _ = bus.publish(&topics.alarm(), alarm.to_bytes(), QoS::AtLeastOnce, false).await;
                }
            }
            _ = crate::device::transport::stopped(&mut shutdown) => break,
        }
    }
    let offline = Envelope::new(
        ids.next(),
        now_ms(),
        DaemonStatusMessage {
            state: "offline".into(),
            site,
        },
    );
    let _ = bus
        .publish(
            &topics.daemon_status(),
            offline.to_bytes(),
            QoS::AtLeastOnce,
            true,
        )
        .await;
    drop(lanes);
    for t in lane_tasks {
        let _ = t.await;
    }
    swap.abort();
    layer.shutdown().await;
    let _ = outbox.await;
    // Give the last publishes a moment to leave before the connection closes.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    bus.disconnect().await;
    if let Some(b) = broker {
        b.stop();
    }
    Ok(())
}

async fn publish_event(bus: &BusClient, topics: &Topics, ids: &mut Ids, e: DeviceEvent) {
    let (lane, device) = (e.lane.to_string(), e.device.to_string());
    let status = |state: &str, reason: String| DeviceStatusMessage {
        lane: lane.clone(),
        device: device.clone(),
        state: state.into(),
        reason,
    };
    // Readings are a stream (QoS 0); status is state (retained); faults are alarms.
    let (topic, bytes, qos, retain) = match e.kind {
        DeviceEventKind::Reading { reading } => {
            let body = ReadingMessage {
                lane: lane.clone(),
                device: device.clone(),
                reading,
            };
            let bytes = Envelope::new(ids.next(), e.at_ms, body).to_bytes();
            (
                topics.reading(&lane, &device),
                bytes,
                QoS::AtMostOnce,
                false,
            )
        }
        DeviceEventKind::Online { link } => {
            let bytes = Envelope::new(ids.next(), e.at_ms, status("online", link)).to_bytes();
            (
                topics.device_status(&lane, &device),
                bytes,
                QoS::AtLeastOnce,
                true,
            )
        }
        DeviceEventKind::Offline { reason } => {
            let bytes = Envelope::new(ids.next(), e.at_ms, status("offline", reason)).to_bytes();
            (
                topics.device_status(&lane, &device),
                bytes,
                QoS::AtLeastOnce,
                true,
            )
        }
        DeviceEventKind::Fault { error } => {
            let body = AlarmMessage {
                code: "device.fault".into(),
                lane: Some(lane.clone()),
                device: Some(device.clone()),
                passage: None,
                severity: Severity::Warning,
                message: error,
            };
            let bytes = Envelope::new(ids.next(), e.at_ms, body).to_bytes();
            (topics.alarm(), bytes, QoS::AtLeastOnce, false)
        }
        DeviceEventKind::Rejected { .. } | DeviceEventKind::Sent { .. } => return,
    };
    if let Err(err) = bus.publish(&topic, bytes, qos, retain).await {
        tracing::warn!("{err}");
    }
}

async fn publish_lane_event(bus: &BusClient, topics: &Topics, ids: &mut Ids, e: LaneEvent) {
    let (topic, bytes) = match e {
        // Passages leave through the outbox; the lane wrote them with their message.
        LaneEvent::Recorded { .. } | LaneEvent::Started { .. } => return,
        LaneEvent::Alarm {
            lane,
            passage,
            code,
            severity,
            message,
        } => {
            let body = AlarmMessage {
                code,
                lane: Some(lane),
                device: None,
                passage,
                severity,
                message,
            };
            (
                topics.alarm(),
                Envelope::new(ids.next(), now_ms(), body).to_bytes(),
            )
        }
        LaneEvent::Reply { topic, reply } => {
            (topic, Envelope::new(ids.next(), now_ms(), reply).to_bytes())
        }
    };
    if let Err(err) = bus.publish(&topic, bytes, QoS::AtLeastOnce, false).await {
        tracing::warn!("{err}");
    }
}

/// Hands an operator's message to its lane; the error is the reason it was refused.
async fn handle_operator(
    lanes: &HashMap<String, Lane>,
    topics: &Topics,
    topic: &str,
    payload: &[u8],
) -> Result<(), String> {
    let lane_id = topic
        .strip_prefix(topics.root())
        .and_then(|r| r.strip_prefix("/lane/"))
        .and_then(|r| r.strip_suffix("/manual"))
        .ok_or_else(|| format!("message on {topic}: not a lane's manual topic"))?;
    let lane = lanes
        .get(lane_id)
        .ok_or_else(|| format!("message on {topic}: no lane {lane_id:?} on this site"))?;
    let m: Envelope<OperatorRequest> = payload::parse(topic, payload).map_err(|e| e.to_string())?;
    if m.body.operator.trim().is_empty() {
        return Err(format!(
            "message {} on {topic}: `operator` is empty: every manual action names who did it",
            m.id
        ));
    }
    lane.inputs
        .send(LaneInput::Operator {
            id: m.id,
            request: m.body,
            reply: None,
        })
        .await
        .map_err(|_| format!("lane {lane_id} has stopped"))
}

/// Applies a control-order or parameter action and answers when asked.
async fn handle_site_action(
    store: &Store,
    catalog: &crate::config::params::ParameterCatalog,
    bus: &BusClient,
    ids: &mut Ids,
    topic: &str,
    payload: &[u8],
) -> Result<(), String> {
    let m: Envelope<SiteRequest> = payload::parse(topic, payload).map_err(|e| e.to_string())?;
    if m.body.operator.trim().is_empty() {
        return Err(format!("message {} on {topic}: `operator` is empty", m.id));
    }
    let result = apply_site_action(store, catalog, &m.body.operator, &m.body.action, now_ms());
    if let Some(reply_to) = &m.body.reply_to {
        let reply = OperatorReply {
            request: m.id.clone(),
            ok: result.is_ok(),
            message: match &result {
                Ok(text) => text.clone(),
                Err(e) => e.to_string(),
            },
            passage: None,
        };
        let bytes = Envelope::new(ids.next(), now_ms(), reply).to_bytes();
        let _ = bus.publish(reply_to, bytes, QoS::AtLeastOnce, false).await;
    }
    match result {
        Ok(text) => {
            tracing::info!("{}: {text}", m.body.operator);
            Ok(())
        }
        Err(e) => Err(format!("message {} on {topic}: {e}", m.id)),
    }
}

/// Answers a query on the requester's reply topic.
async fn handle_query(
    store: &Store,
    bus: &BusClient,
    ids: &mut Ids,
    topic: &str,
    payload: &[u8],
) -> Result<(), String> {
    let m: Envelope<QueryRequest> = payload::parse(topic, payload).map_err(|e| e.to_string())?;
    // Statistics over a long range read many passages: off the daemon's loop.
    let (store2, kind) = (store.clone(), m.body.kind.clone());
    let result = tokio::task::spawn_blocking(move || queries::answer(&store2, &kind))
        .await
        .map_err(|e| format!("query {}: {e}", m.id))?;
    let reply = match &result {
        Ok(v) => QueryReply {
            request: m.id.clone(),
            ok: true,
            message: String::new(),
            result: v.clone(),
        },
        Err(e) => QueryReply {
            request: m.id.clone(),
            ok: false,
            message: e.clone(),
            result: serde_json::Value::Null,
        },
    };
    let bytes = Envelope::new(ids.next(), now_ms(), reply).to_bytes();
    bus.publish(&m.body.reply_to, bytes, QoS::AtLeastOnce, false)
        .await
        .map_err(|e| e.to_string())?;
    result
        .map(drop)
        .map_err(|e| format!("query {} on {topic}: {e}", m.id))
}

/// Applies a command message; the error is the reason it was refused.
async fn handle_command(
    layer: &DeviceLayer,
    topics: &Topics,
    topic: &str,
    payload: &[u8],
) -> Result<(), String> {
    let rest = topic
        .strip_prefix(topics.root())
        .and_then(|r| r.strip_prefix("/lane/"))
        .ok_or_else(|| format!("message on {topic}: not a topic this daemon handles"))?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [lane, "device", device, "command"] = parts.as_slice() else {
        return Err(format!("message on {topic}: not a device command topic"));
    };
    let m: Envelope<CommandMessage> = payload::parse(topic, payload).map_err(|e| e.to_string())?;
    layer
        .command(lane, device, m.body.command)
        .await
        .map_err(|e| format!("command {} on {topic}: {e}", m.id))
}

/// Applies a platform message all or nothing and publishes what became of it.
async fn handle_platform(
    store: &Store,
    bus: &BusClient,
    topics: &Topics,
    ids: &mut Ids,
    topic: &str,
    payload: &[u8],
) -> Result<(), String> {
    let m: Envelope<PlatformMessage> = payload::parse(topic, payload).map_err(|e| e.to_string())?;
    let mut records = Vec::new();
    let mut rejected = Vec::new();
    for (i, value) in m.body.records.into_iter().enumerate() {
        match Record::from_json(value) {
            Ok(r) => records.push(r),
            Err(errors) => {
                rejected.extend(
                    errors
                        .into_iter()
                        .map(|e| format!("record {}: {}: {}", i + 1, e.field, e.reason)),
                );
            }
        }
    }
    let count = (records.len() + rejected.len()) as u64;
    let applied = if rejected.is_empty() {
        let mut options = ApplyOptions::new("platform", now_ms());
        options.source = format!("bus message {}", m.id);
        let report = store
            .apply_platform_records(&records, &options)
            .map_err(|e| e.to_string())?;
        rejected.extend(report.rejected.iter().map(ToString::to_string));
        report.applied
    } else {
        false
    };
    let report = PlatformReport {
        message: m.id.clone(),
        applied,
        records: count,
        rejected: rejected.clone(),
    };
    let out = Envelope::new(ids.next(), now_ms(), report);
    let _ = bus
        .publish(
            &topics.platform("report"),
            out.to_bytes(),
            QoS::AtLeastOnce,
            false,
        )
        .await;
    if rejected.is_empty() {
        tracing::info!("platform message {}: {count} records applied", m.id);
        Ok(())
    } else {
        Err(format!(
            "platform message {}: nothing applied; {}",
            m.id,
            rejected.join("; ")
        ))
    }
}
