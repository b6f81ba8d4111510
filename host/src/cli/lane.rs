//! `kakou lane`, `kakou control` and `kakou param`: operator actions sent to the running
//! daemon over the site's bus (the daemon answers each), and read-only lists from the store.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use kakou_plugin_sdk::model::{
    Card, CardKind, Container, ControlOrder, Direction, DocumentRef, Outcome, Plate, Reading,
    SubjectKind, Weight,
};
use serde::Serialize;

use crate::bus::payload::{self, Envelope};
use crate::bus::{BusClient, ClientOptions, Link, QoS, RejectedMessage, Topics};
use crate::config::SiteManifest;
use crate::lane::{OperatorAction, OperatorReply, OperatorRequest, SiteAction, SiteRequest};
use crate::store::{PassageState, Store};

/// Where the daemon is, and who acts.
#[derive(Debug, Args)]
pub struct Target {
    /// The site manifest (its bus section says where the daemon's broker is).
    #[arg(long, default_value = "manifests/site.toml")]
    site: PathBuf,
    /// Broker URL, instead of the manifest's (e.g. the demo's `mqtt://127.0.0.1:PORT`).
    #[arg(long)]
    broker: Option<String>,
    /// Site id, instead of the manifest's.
    #[arg(long)]
    site_id: Option<String>,
    /// Who acts (recorded in the audit log).
    #[arg(long, env = "KAKOU_OPERATOR")]
    operator: String,
}

/// Readings keyed in by an operator.
#[derive(Debug, Args, Default)]
pub struct Keyed {
    /// Container number (ISO 6346).
    #[arg(long)]
    container: Vec<String>,
    /// ISO size-type code of the container(s), e.g. 22G1.
    #[arg(long)]
    iso: Option<String>,
    /// Plate.
    #[arg(long)]
    plate: Option<String>,
    /// Gross weight, kg.
    #[arg(long)]
    weight: Option<f64>,
    /// Driver's card UID (hex).
    #[arg(long)]
    card: Option<String>,
    /// A document presented, as KIND:NUMBER (e.g. local-clearance:L520120261127000112).
    #[arg(long)]
    document: Vec<String>,
}

impl Keyed {
    fn readings(&self) -> anyhow::Result<Vec<Reading>> {
        let mut out: Vec<Reading> = Vec::new();
        for d in &self.document {
            let Some((kind, number)) = d.split_once(':') else {
                bail!(
                    "--document {d:?}: expected KIND:NUMBER, e.g. transit-release:T520120261127000001"
                );
            };
            out.push(
                DocumentRef {
                    kind: kind.trim().to_owned(),
                    number: number.trim().to_owned(),
                }
                .into(),
            );
        }
        for c in &self.container {
            out.push(
                Container {
                    number: c.clone(),
                    iso_type: self.iso.clone(),
                    confidence: 100,
                    ..Default::default()
                }
                .into(),
            );
        }
        if let Some(p) = &self.plate {
            out.push(
                Plate {
                    text: p.clone(),
                    confidence: 100,
                    ..Default::default()
                }
                .into(),
            );
        }
        if let Some(kg) = self.weight {
            out.push(
                Weight {
                    kg,
                    stable: true,
                    ..Default::default()
                }
                .into(),
            );
        }
        if let Some(uid) = &self.card {
            out.push(
                Card {
                    uid: uid.to_uppercase(),
                    kind: CardKind::Other,
                }
                .into(),
            );
        }
        Ok(out)
    }
}

/// Operator actions on a lane's passages (sent to the running daemon).
#[derive(Debug, Subcommand)]
pub enum LaneCommand {
    /// Key in missing or wrong readings; the passage is decided again (also `manual`).
    #[command(alias = "manual")]
    Complete {
        #[command(flatten)]
        target: Target,
        /// Lane id.
        #[arg(long)]
        lane: String,
        /// Passage id (default: the lane's oldest waiting passage).
        #[arg(long)]
        passage: Option<String>,
        #[command(flatten)]
        keyed: Keyed,
    },
    /// Release, send to inspection, refuse or cancel a passage, with a reason.
    Decide {
        #[command(flatten)]
        target: Target,
        /// Lane id.
        #[arg(long)]
        lane: String,
        /// Passage id (default: the lane's oldest waiting passage).
        #[arg(long)]
        passage: Option<String>,
        /// release, inspect, refuse or cancel.
        #[arg(value_parser = ["release", "inspect", "refuse", "cancel"])]
        decision: String,
        /// Why (required: it is audited).
        #[arg(long)]
        reason: String,
    },
    /// Mark an inspected passage: passed releases the truck.
    Inspected {
        #[command(flatten)]
        target: Target,
        /// Lane id.
        #[arg(long)]
        lane: String,
        /// Passage id.
        #[arg(long)]
        passage: String,
        /// The inspection found nothing wrong.
        #[arg(long, conflicts_with = "failed")]
        passed: bool,
        /// The inspection found something.
        #[arg(long)]
        failed: bool,
        /// Findings.
        #[arg(long)]
        note: Option<String>,
    },
    /// Backfill container and plate of a passage released in congestion mode.
    Backfill {
        #[command(flatten)]
        target: Target,
        /// Lane id.
        #[arg(long)]
        lane: String,
        /// Passage id.
        #[arg(long)]
        passage: String,
        #[command(flatten)]
        keyed: Keyed,
    },
    /// Write off a two-plate vehicle's missing entry or exit.
    WriteOff {
        #[command(flatten)]
        target: Target,
        /// Lane id (where the write-off is recorded).
        #[arg(long)]
        lane: String,
        /// The vehicle's registered plate.
        #[arg(long)]
        plate: String,
        /// The movement to record: import (an entry) or export (an exit).
        #[arg(long, value_parser = ["import", "export"])]
        direction: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Passages waiting for an operator, in inspection, or awaiting backfill (from the store).
    Waiting {
        /// The store file.
        #[arg(long)]
        store: PathBuf,
        /// Only this lane.
        #[arg(long)]
        lane: Option<String>,
        /// Look back this many hours.
        #[arg(long, default_value_t = 24)]
        hours: i64,
    },
    /// Vehicles whose entries and exits do not balance (not written off).
    Balances {
        /// The store file.
        #[arg(long)]
        store: PathBuf,
    },
}

/// Control orders (布控).
#[derive(Debug, Subcommand)]
pub enum ControlCommand {
    /// Put a control order on a container, vehicle or driver; lanes stop every match at once.
    Add {
        #[command(flatten)]
        target: Target,
        /// Order id.
        #[arg(long)]
        id: String,
        /// container, vehicle or driver.
        #[arg(long, value_parser = ["container", "vehicle", "driver"])]
        on: String,
        /// Container number, plate or driver id.
        subject: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// What a match demands: manual, inspect or refuse.
        #[arg(long, default_value = "inspect", value_parser = ["manual", "inspect", "refuse"])]
        action: String,
        /// Expires after this many hours (default: until revoked).
        #[arg(long)]
        hours: Option<i64>,
    },
    /// Revoke a control order.
    Revoke {
        #[command(flatten)]
        target: Target,
        /// Order id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Control orders in the store, in force or not.
    List {
        /// The store file.
        #[arg(long)]
        store: PathBuf,
    },
}

/// The parameter library.
#[derive(Debug, Subcommand)]
pub enum ParamCommand {
    /// Set a parameter (a new version, audited); lanes use it from the next passage.
    Set {
        #[command(flatten)]
        target: Target,
        /// Name, e.g. weight.tolerance-percent.
        name: String,
        /// Value.
        value: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Current parameters in the store.
    List {
        /// The store file.
        #[arg(long)]
        store: PathBuf,
        /// The site manifest: marks parameters its rule set and lanes do not read, and values
        /// that do not fit their declaration.
        #[arg(long)]
        site: Option<PathBuf>,
    },
    /// Every version of a parameter.
    History {
        /// The store file.
        #[arg(long)]
        store: PathBuf,
        /// Parameter name.
        name: String,
    },
}

impl LaneCommand {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let (target, lane, action) = match self {
            LaneCommand::Waiting { store, lane, hours } => return waiting(&store, lane, hours),
            LaneCommand::Balances { store } => return balances(&store),
            LaneCommand::Complete {
                target,
                lane,
                passage,
                keyed,
            } => {
                let readings = keyed.readings()?;
                if readings.is_empty() {
                    bail!(
                        "nothing keyed in: give --container, --plate, --weight, --card or --document"
                    );
                }
                crate::lane::validate_keyed(&readings)?;
                let passage = Some(resolve_passage(&target, &lane, passage)?);
                (target, lane, OperatorAction::Complete { passage, readings })
            }
            LaneCommand::Decide {
                target,
                lane,
                passage,
                decision,
                reason,
            } => {
                let passage = Some(resolve_passage(&target, &lane, passage)?);
                let action = match decision.as_str() {
                    "release" => OperatorAction::Release { passage, reason },
                    "inspect" => OperatorAction::Inspect { passage, reason },
                    "refuse" => OperatorAction::Refuse { passage, reason },
                    _ => OperatorAction::Cancel { passage, reason },
                };
                (target, lane, action)
            }
            LaneCommand::Inspected {
                target,
                lane,
                passage,
                passed,
                failed,
                note,
            } => {
                if passed == failed {
                    bail!("say how the inspection went: --passed or --failed");
                }
                (
                    target,
                    lane,
                    OperatorAction::Inspected {
                        passage,
                        passed,
                        note,
                    },
                )
            }
            LaneCommand::Backfill {
                target,
                lane,
                passage,
                keyed,
            } => {
                let readings = keyed.readings()?;
                if readings.is_empty() {
                    bail!("nothing to backfill: give --container or --plate");
                }
                crate::lane::validate_keyed(&readings)?;
                (target, lane, OperatorAction::Backfill { passage, readings })
            }
            LaneCommand::WriteOff {
                target,
                lane,
                plate,
                direction,
                reason,
            } => {
                let direction = if direction == "import" {
                    Direction::Import
                } else {
                    Direction::Export
                };
                (
                    target,
                    lane,
                    OperatorAction::WriteOff {
                        plate,
                        direction,
                        reason,
                    },
                )
            }
        };
        let operator = target.operator.clone();
        send(
            &target,
            |topics| topics.manual(&lane),
            |reply_to| OperatorRequest {
                operator,
                action,
                reply_to: Some(reply_to),
            },
        )
    }
}

impl ControlCommand {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let (target, action) = match self {
            ControlCommand::List { store } => return control_list(&store),
            ControlCommand::Add {
                target,
                id,
                on,
                subject,
                reason,
                action,
                hours,
            } => {
                let subject_kind = match on.as_str() {
                    "container" => SubjectKind::Container,
                    "vehicle" => SubjectKind::Vehicle,
                    _ => SubjectKind::Driver,
                };
                let action = match action.as_str() {
                    "manual" => Outcome::Manual,
                    "refuse" => Outcome::Refuse,
                    _ => Outcome::Inspect,
                };
                let now = crate::device::now_ms();
                let order = ControlOrder {
                    id,
                    subject_kind,
                    subject,
                    reason,
                    action,
                    expires_ms: hours.map(|h| now.saturating_add(h.saturating_mul(3_600_000))),
                };
                // The daemon checks again; checking here says why at once, without a round trip.
                crate::lane::check_control_order(&order, now)?;
                (target, SiteAction::ControlOrder { order })
            }
            ControlCommand::Revoke { target, id, reason } => (
                target,
                SiteAction::Revoke {
                    order_id: id,
                    reason,
                },
            ),
        };
        site_action(target, action, |t| t.control_order())
    }
}

impl ParamCommand {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            ParamCommand::Set {
                target,
                name,
                value,
                reason,
            } => {
                match local_catalog(&target.site) {
                    Ok(catalog) => {
                        catalog.validate(&name, &value)?;
                    }
                    Err(why) => eprintln!("not checked here ({why:#}); the daemon checks it"),
                }
                site_action(
                    target,
                    SiteAction::SetParameter {
                        name,
                        value,
                        reason,
                    },
                    Topics::parameter,
                )
            }
            ParamCommand::List { store, site } => {
                let s = open(&store)?;
                let catalog = site.as_deref().map(local_catalog).transpose()?;
                for p in s.snapshot()?.parameters()? {
                    // A stored value the site's catalogue refuses is one nothing reads (a
                    // misspelt name) or one its reader will refuse on the next truck.
                    let note = match catalog.as_ref().map(|c| c.validate(&p.name, &p.value)) {
                        Some(Err(crate::config::params::ParameterError::Unknown { .. })) => {
                            "  (not read on this site)"
                        }
                        Some(Err(_)) => "  (does not fit its declaration)",
                        _ => "",
                    };
                    println!(
                        "{:<36} {:<28} v{} set by {}{note}",
                        p.name, p.value, p.version, p.set_by
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            ParamCommand::History { store, name } => {
                let s = open(&store)?;
                let history = s.snapshot()?.parameter_history(&name)?;
                if history.is_empty() {
                    bail!("no parameter {name:?} in {}", store.display());
                }
                for p in history {
                    println!(
                        "v{:<4} {:<28} set {} by {}",
                        p.version,
                        p.value,
                        crate::query::format_ms(p.set_ms, crate::query::UtcOffset::UTC),
                        p.set_by
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

/// The parameter catalogue of the site manifest at `site`: its rule set file's declarations
/// and its lanes' (the plugins are not loaded).
fn local_catalog(site: &Path) -> anyhow::Result<crate::config::params::ParameterCatalog> {
    let manifest = SiteManifest::load(site)
        .with_context(|| format!("reading the site manifest {}", site.display()))?;
    let Some(path) = manifest.ruleset_path() else {
        bail!("{} names no rule set", site.display());
    };
    let ruleset = crate::config::region::RuleSetManifest::load(&path)?;
    let lanes: Vec<&str> = manifest.lanes.iter().map(|l| l.id.as_str()).collect();
    Ok(crate::lane::site_catalog(&ruleset, &lanes))
}

fn site_action(
    target: Target,
    action: SiteAction,
    topic: impl FnOnce(&Topics) -> String,
) -> anyhow::Result<ExitCode> {
    let operator = target.operator.clone();
    send(&target, topic, |reply_to| SiteRequest {
        operator,
        action,
        reply_to: Some(reply_to),
    })
}

/// How the command line reaches a site's daemon.
pub(super) struct SiteBus {
    pub(super) site: String,
    pub(super) url: String,
    pub(super) topics: Topics,
    /// This command's client id (its reply topic is named after it).
    pub(super) client: String,
    pub(super) options: ClientOptions,
}

/// The bus of the site in manifest `site`, or of `broker` / `site_id` when given.
pub(super) fn site_bus(
    manifest_path: &Path,
    broker: Option<&str>,
    site_id: Option<&str>,
) -> anyhow::Result<SiteBus> {
    let manifest = SiteManifest::load(manifest_path)
        .with_context(|| format!("reading the site manifest {}", manifest_path.display()))?;
    let site = site_id.map_or(manifest.site.id.clone(), str::to_owned);
    let url = match broker {
        Some(u) => u.to_owned(),
        None if manifest.bus.broker == "embedded" => {
            if manifest.bus.listen.port() == 0 {
                bail!(
                    "{}: the embedded broker picks its port at start (`listen` port 0); give --broker with the URL the daemon printed",
                    manifest_path.display()
                );
            }
            format!("mqtt://{}", manifest.bus.listen)
        }
        None => manifest.bus.broker.clone(),
    };
    let topics = Topics::new(&site);
    let client = format!("kakou-cli-{}", std::process::id());
    let mut options = ClientOptions::new(&url, &client);
    options.credentials = manifest.bus.credentials.clone();
    options.ca_file = manifest.bus.ca_file.clone();
    options.client_cert = manifest.bus.client_cert.clone();
    Ok(SiteBus {
        site,
        url,
        topics,
        client,
        options,
    })
}

/// Publishes a request to the daemon and prints its answer.
fn send<B: Serialize>(
    target: &Target,
    topic: impl FnOnce(&Topics) -> String,
    body: impl FnOnce(String) -> B,
) -> anyhow::Result<ExitCode> {
    if target.operator.trim().is_empty() {
        bail!("--operator is empty: every action names who did it");
    }
    let SiteBus {
        site,
        url,
        topics,
        client,
        options,
    } = site_bus(
        &target.site,
        target.broker.as_deref(),
        target.site_id.as_deref(),
    )?;
    let reply_topic = topics.reply(&client);
    let request_topic = topic(&topics);
    let id = format!("{client}-{}", crate::device::now_ms());
    let bytes = Envelope::new(
        id.clone(),
        crate::device::now_ms(),
        body(reply_topic.clone()),
    )
    .to_bytes();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let reply: OperatorReply = rt.block_on(async {
        let (bus, mut rx, mut links) = BusClient::connect(&options)?;
        bus.subscribe(&reply_topic, QoS::AtLeastOnce).await?;
        bus.subscribe(&topics.rejected(), QoS::AtLeastOnce).await?;
        // Ask only once the answer can be heard.
        let subscribed = async {
            while let Some(l) = links.recv().await {
                if l == Link::Subscribed {
                    return true;
                }
            }
            false
        };
        if !matches!(
            tokio::time::timeout(Duration::from_secs(10), subscribed).await,
            Ok(true)
        ) {
            bus.disconnect().await;
            bail!("cannot reach the broker of site {site} at {url} within 10 s: is it running?");
        }
        // The same request (same id) is sent again while no answer comes: the daemon acts on
        // it once and answers every copy with its first answer.
        let mut resend = tokio::time::interval(Duration::from_secs(5));
        let answer = async {
            loop {
                tokio::select! {
                    _ = resend.tick() => {
                        if let Err(e) = bus.publish(&request_topic, bytes.clone(), QoS::AtLeastOnce, false).await {
                            return Err(e.into());
                        }
                    }
                    m = rx.recv() => {
                        let Some(m) = m else { return Ok(None) };
                        if m.topic == reply_topic
                            && let Ok(r) = payload::parse::<OperatorReply>(&m.topic, &m.payload)
                            && r.body.request == id
                        {
                            return Ok(Some(r.body));
                        }
                        if m.topic == topics.rejected()
                            && let Ok(r) = payload::parse::<RejectedMessage>(&m.topic, &m.payload)
                            && r.body.request.as_deref() == Some(id.as_str())
                        {
                            return Ok(Some(OperatorReply {
                                request: id.clone(),
                                ok: false,
                                message: r.body.reason,
                                passage: None,
                            }));
                        }
                    }
                }
            }
        };
        let reply: Result<Result<Option<OperatorReply>, anyhow::Error>, _> =
            tokio::time::timeout(Duration::from_secs(20), answer).await;
        bus.disconnect().await;
        match reply {
            Ok(Ok(Some(r))) => Ok(r),
            Ok(Err(e)) => Err(e),
            _ => bail!(
                "no answer from site {site} on {url} within 20 s (the request was sent 4 times): is `kakou run` running for this site?"
            ),
        }
    })?;
    if reply.ok {
        println!("{}", reply.message);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("refused: {}", reply.message);
        Ok(ExitCode::FAILURE)
    }
}

/// The passage an action is for: the one named, or else the lane's one passage waiting for
/// an operator (read from the site's store). Resolved here, once, so that every copy of the
/// request names the same passage; with several waiting the operator must choose.
fn resolve_passage(target: &Target, lane: &str, named: Option<String>) -> anyhow::Result<String> {
    if let Some(p) = named {
        return Ok(p);
    }
    let manifest = SiteManifest::load(&target.site)
        .with_context(|| format!("reading the site manifest {}", target.site.display()))?;
    let store = open(&manifest.store.path)?;
    let now = crate::device::now_ms();
    let waiting: Vec<String> = store
        .passages_by_lane_between(lane, now - 86_400_000, now + 1)?
        .into_iter()
        .filter(|r| matches!(r.state, PassageState::Manual | PassageState::Inspection))
        .map(|r| r.passage.id)
        .collect();
    match waiting.as_slice() {
        [one] => {
            eprintln!("passage {one} (the one waiting on lane {lane})");
            Ok(one.clone())
        }
        [] => bail!("no passage is waiting on lane {lane}: name one with --passage"),
        many => bail!(
            "{} passages are waiting on lane {lane}: name one with --passage ({})",
            many.len(),
            many.join(", ")
        ),
    }
}

fn open(path: &Path) -> anyhow::Result<Store> {
    Store::open_for_reading(path).with_context(|| format!("opening the store {}", path.display()))
}

fn waiting(store: &Path, lane: Option<String>, hours: i64) -> anyhow::Result<ExitCode> {
    let s = open(store)?;
    let snap = s.snapshot()?;
    let now = crate::device::now_ms();
    let lanes: Vec<String> = match lane {
        Some(l) => vec![l],
        None => snap.passage_index_values(crate::store::PassageIndex::Lane)?,
    };
    let mut n = 0;
    for lane in lanes {
        for r in snap.passages_by_lane_between(&lane, now - hours * 3_600_000, now + 1)? {
            let backfill = r.passage.attribute("backfill-needed").map(str::to_owned);
            let why = match (r.state, &backfill) {
                (PassageState::Manual, _) => "waiting for an operator".to_owned(),
                (PassageState::Inspection, _) => "in inspection".to_owned(),
                (_, Some(b)) => format!("released in congestion mode, backfill {b}"),
                _ => continue,
            };
            n += 1;
            println!(
                "{}  {}  {:<40} {why}",
                crate::query::format_ms(r.passage.started_ms, crate::query::UtcOffset::UTC),
                r.passage.lane.id,
                r.passage.id
            );
        }
    }
    if n == 0 {
        println!("nothing waiting");
    }
    Ok(ExitCode::SUCCESS)
}

fn balances(store: &Path) -> anyhow::Result<ExitCode> {
    let s = open(store)?;
    let snap = s.snapshot()?;
    let mut n = 0;
    for (plate, balance) in snap.balances()? {
        if balance == 0 {
            continue;
        }
        let two_plate = snap.vehicle(&plate)?.is_some_and(|v| v.two_plate);
        if !two_plate {
            continue;
        }
        n += 1;
        let what = if balance > 0 {
            format!("{balance} entry(ies) without exit")
        } else {
            format!("{} exit(s) without entry", -balance)
        };
        println!("{plate:<12} {balance:+}  {what}");
    }
    if n == 0 {
        println!("every two-plate vehicle is written off");
    }
    Ok(ExitCode::SUCCESS)
}

fn control_list(store: &Path) -> anyhow::Result<ExitCode> {
    let s = open(store)?;
    let now = crate::device::now_ms();
    for o in s.snapshot()?.control_orders()? {
        let state = if o.in_force(now) {
            "in force"
        } else if o.revoked_ms.is_some() {
            "revoked"
        } else {
            "expired"
        };
        println!(
            "{:<18} {:<9} {:<14} {:<8} {:<8} {}",
            o.order.id,
            format!("{:?}", o.order.subject_kind).to_lowercase(),
            o.order.subject,
            format!("{:?}", o.order.action).to_lowercase(),
            state,
            o.order.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `kakou replay`: recorded passages against another rule set or parameter version.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The store file (read only; works beside a running daemon).
    #[arg(long)]
    store: PathBuf,
    /// Rule set: a name under manifests/regions/ or a region file.
    #[arg(long)]
    ruleset: String,
    /// Folder holding rules/<name> plugin folders.
    #[arg(long, default_value = "plugins")]
    plugins: PathBuf,
    /// Folder of region rule sets, for a rule set given by name.
    #[arg(long, default_value = "manifests/regions")]
    regions: PathBuf,
    /// Parameters: `current` (default), `decision` (as each passage was decided), or a time
    /// (2026-11-27, RFC 3339, unix ms).
    #[arg(long, default_value = "current")]
    parameters: String,
    /// Force a parameter for the replay, repeatable: `--set weight.tolerance-percent=2`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Only passages started at or after this time.
    #[arg(long)]
    from: Option<String>,
    /// Only passages started before this time.
    #[arg(long)]
    to: Option<String>,
    /// Only this lane.
    #[arg(long)]
    lane: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn time_arg(text: &str, end: bool) -> anyhow::Result<i64> {
    let spec = crate::query::TimeSpec::parse(text)?;
    let utc = crate::query::UtcOffset::UTC;
    Ok(if end {
        spec.end_ms(utc)
    } else {
        spec.start_ms(utc)
    })
}

impl ReplayArgs {
    /// Runs the replay and prints every outcome that would change.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        use crate::lane::replay::{ParameterVersion, ReplayOptions, replay};
        let path = if self.ruleset.ends_with(".toml") {
            PathBuf::from(&self.ruleset)
        } else {
            self.regions.join(format!("{}.toml", self.ruleset))
        };
        let mut options = ReplayOptions {
            parameters: match self.parameters.as_str() {
                "current" => ParameterVersion::Current,
                "decision" => ParameterVersion::AtDecision,
                t => ParameterVersion::At(time_arg(t, false)?),
            },
            lane: self.lane,
            from_ms: self
                .from
                .as_deref()
                .map(|t| time_arg(t, false))
                .transpose()?,
            to_ms: self.to.as_deref().map(|t| time_arg(t, true)).transpose()?,
            ..Default::default()
        };
        for s in &self.set {
            let Some((k, v)) = s.split_once('=') else {
                bail!("--set {s:?}: expected NAME=VALUE");
            };
            options
                .overrides
                .insert(k.trim().to_owned(), v.trim().to_owned());
        }
        let store = open(&self.store)?;
        let runtime = crate::plugin::Runtime::new(crate::plugin::Runtime::default_cache_dir())?;
        let ruleset = crate::lane::RuleSet::load(
            &runtime,
            &path,
            &self.plugins,
            &crate::plugin::LoadOptions::development(),
        )?;
        let report = replay(&store, &ruleset, &options)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(ExitCode::SUCCESS);
        }
        for c in &report.changes {
            println!(
                "{}  {}  {:?} → {:?}  (recorded by {})",
                c.passage, c.lane, c.before, c.after, c.recorded_by
            );
            for k in &c.checks {
                let show = |r: Option<kakou_plugin_sdk::model::CheckResult>| {
                    r.map_or("-".to_owned(), |r| format!("{r:?}").to_lowercase())
                };
                println!(
                    "    {:<30} {} → {}  {}",
                    k.code,
                    show(k.before),
                    show(k.after),
                    k.message
                );
            }
        }
        println!(
            "{}: {} passages replayed, {} skipped, {} would change{}",
            report.ruleset,
            report.passages,
            report.skipped,
            report.changes.len(),
            if report.transitions.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    report
                        .transitions
                        .iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        Ok(ExitCode::SUCCESS)
    }
}
