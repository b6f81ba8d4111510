//! `kakou alarm`: the alarms the store keeps with their state, for an operator station that
//! was offline when they were published. `list` asks the running daemon (`--site`) or reads
//! the store file (`--store`, daemon running or not); `ack` sends an acknowledgement to the
//! daemon over the bus, once per request however often it is resent.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use super::lane::{SiteBus, site_bus};
use crate::bus::payload::{self, Envelope};
use crate::bus::{BusClient, Link, QoS, RejectedMessage};
use crate::daemon::{
    AlarmAckReply, AlarmAckRequest, QueryKind, QueryReply, QueryRequest, stored_alarms,
};
use crate::query::{TimeRange, TimeSpec, UtcOffset, format_ms};
use crate::store::{AlarmRecord, Store};

/// `kakou alarm …`.
#[derive(Debug, Subcommand)]
pub enum AlarmCommand {
    /// Stored alarms: those not cleared (`--open`), or those first raised in a time range.
    List(ListArgs),
    /// Acknowledge a stored alarm (sent to the running daemon).
    Ack(AckArgs),
}

/// Arguments of `kakou alarm list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Ask the running daemon of this site manifest.
    #[arg(long, conflicts_with = "store", required_unless_present = "store")]
    site: Option<PathBuf>,
    /// Broker URL, instead of the manifest's (with --site).
    #[arg(long, requires = "site")]
    broker: Option<String>,
    /// Read this store file instead.
    #[arg(long)]
    store: Option<PathBuf>,
    /// Only the alarms not cleared, whenever raised.
    #[arg(long)]
    open: bool,
    /// First raised from (unix ms, or YYYY-MM-DD[THH:MM[:SS]] UTC).
    #[arg(long)]
    from: Option<String>,
    /// First raised before.
    #[arg(long)]
    to: Option<String>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

/// Arguments of `kakou alarm ack`.
#[derive(Debug, Args)]
pub struct AckArgs {
    /// The alarm's id (`kakou alarm list`).
    id: String,
    /// Who acknowledges it.
    #[arg(long, env = "KAKOU_OPERATOR")]
    operator: String,
    /// Free text kept with the acknowledgement.
    #[arg(long)]
    note: Option<String>,
    /// The site manifest of the daemon.
    #[arg(long)]
    site: PathBuf,
    /// Broker URL, instead of the manifest's.
    #[arg(long)]
    broker: Option<String>,
}

impl AlarmCommand {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            AlarmCommand::List(a) => a.run(),
            AlarmCommand::Ack(a) => a.run(),
        }
    }
}

impl ListArgs {
    fn range(&self) -> anyhow::Result<TimeRange> {
        let at = |s: &Option<String>, what: &str| -> anyhow::Result<Option<TimeSpec>> {
            s.as_deref()
                .map(|t| TimeSpec::parse(t).with_context(|| format!("--{what} {t:?}")))
                .transpose()
        };
        Ok(TimeRange {
            from_ms: at(&self.from, "from")?.map(|t| t.start_ms(UtcOffset::UTC)),
            to_ms: at(&self.to, "to")?.map(|t| t.start_ms(UtcOffset::UTC)),
        })
    }

    fn run(self) -> anyhow::Result<ExitCode> {
        let range = self.range()?;
        let alarms = match (&self.site, &self.store) {
            (_, Some(store)) => {
                let store = Store::open_for_reading(store)?;
                stored_alarms(&store.snapshot()?, self.open, range)?
            }
            (Some(site), None) => {
                let kind = QueryKind::Alarms {
                    open: self.open,
                    range,
                };
                let value = ask(site, self.broker.as_deref(), kind)?;
                serde_json::from_value(value).context("reading the daemon's alarms")?
            }
            (None, None) => {
                bail!("give --site (ask the running daemon) or --store (read the file)")
            }
        };
        for a in &alarms {
            if self.json {
                println!("{}", serde_json::to_string(a)?);
            } else {
                println!("{}", line(a));
            }
        }
        if !self.json && alarms.is_empty() {
            println!("no alarms");
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// One alarm as a line: id, state, times, what.
fn line(a: &AlarmRecord) -> String {
    let at = |ms: i64| format_ms(ms, UtcOffset::UTC);
    let state = match (&a.cleared, &a.acknowledged) {
        (Some(c), _) => format!(
            "cleared {} by {}",
            at(c.at_ms),
            c.by.as_deref().unwrap_or("the daemon")
        ),
        (None, Some(k)) => format!("acknowledged {} by {}", at(k.at_ms), k.by),
        (None, None) => "OPEN".to_owned(),
    };
    let r = &a.alarm;
    let place = [&r.lane, &r.device, &r.passage]
        .iter()
        .filter_map(|p| p.as_deref())
        .collect::<Vec<_>>()
        .join("/");
    format!(
        "{}  {:?}  {}  {}  {}  first {}  last {}  ×{}  {}",
        a.id,
        r.severity,
        r.code,
        if place.is_empty() { "-" } else { &place },
        state,
        at(a.first_ms),
        at(a.last_ms),
        a.count,
        r.message
    )
}

/// A query to the running daemon; its result.
fn ask(
    site: &std::path::Path,
    broker: Option<&str>,
    kind: QueryKind,
) -> anyhow::Result<serde_json::Value> {
    let SiteBus {
        site,
        url,
        topics,
        client,
        options,
    } = site_bus(site, broker, None)?;
    let reply_topic = topics.reply(&client);
    let id = format!("{client}-{}", crate::device::now_ms());
    let request = QueryRequest {
        kind,
        reply_to: reply_topic.clone(),
    };
    let bytes = Envelope::new(id.clone(), crate::device::now_ms(), request).to_bytes();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let reply: Option<QueryReply> = rt.block_on(async {
        let (bus, mut rx, mut links) = BusClient::connect(&options)?;
        bus.subscribe(&reply_topic, QoS::AtLeastOnce).await?;
        let ask = async {
            while let Some(l) = links.recv().await {
                if l == Link::Subscribed {
                    bus.publish(&topics.query(), bytes.clone(), QoS::AtLeastOnce, false)
                        .await?;
                }
            }
            anyhow::Ok(())
        };
        let answer = async {
            while let Some(m) = rx.recv().await {
                if let Ok(r) = payload::parse::<QueryReply>(&m.topic, &m.payload)
                    && r.body.request == id
                {
                    return Some(r.body);
                }
            }
            None
        };
        let reply = tokio::time::timeout(Duration::from_secs(15), async {
            tokio::select! {
                r = answer => r,
                _ = ask => None,
            }
        })
        .await
        .ok()
        .flatten();
        bus.disconnect().await;
        anyhow::Ok(reply)
    })?;
    let Some(reply) = reply else {
        bail!(
            "no answer from site {site} on {url} within 15 s: is `kakou run` running for this site?"
        );
    };
    if !reply.ok {
        bail!("refused: {}", reply.message);
    }
    Ok(reply.result)
}

impl AckArgs {
    fn run(self) -> anyhow::Result<ExitCode> {
        if self.operator.trim().is_empty() {
            bail!("--operator is empty: an acknowledgement names who made it");
        }
        let SiteBus {
            site,
            url,
            topics,
            client,
            options,
        } = site_bus(&self.site, self.broker.as_deref(), None)?;
        let reply_topic = topics.reply(&client);
        let id = format!("{client}-{}", crate::device::now_ms());
        let request = AlarmAckRequest {
            alarm: self.id.clone(),
            operator: self.operator.clone(),
            note: self.note.clone(),
            reply_to: Some(reply_topic.clone()),
        };
        let bytes = Envelope::new(id.clone(), crate::device::now_ms(), request).to_bytes();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let reply: AlarmAckReply = rt.block_on(async {
            let (bus, mut rx, mut links) = BusClient::connect(&options)?;
            bus.subscribe(&reply_topic, QoS::AtLeastOnce).await?;
            bus.subscribe(&topics.rejected(), QoS::AtLeastOnce).await?;
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
            // Resent under the same id while no answer comes: the daemon acts once.
            let mut resend = tokio::time::interval(Duration::from_secs(5));
            let answer = async {
                loop {
                    tokio::select! {
                        _ = resend.tick() => {
                            bus.publish(&topics.alarm_ack(), bytes.clone(), QoS::AtLeastOnce, false).await?;
                        }
                        m = rx.recv() => {
                            let Some(m) = m else { return anyhow::Ok(None) };
                            if m.topic == reply_topic
                                && let Ok(r) = payload::parse::<AlarmAckReply>(&m.topic, &m.payload)
                                && r.body.request == id
                            {
                                return Ok(Some(r.body));
                            }
                            if m.topic == topics.rejected()
                                && let Ok(r) = payload::parse::<RejectedMessage>(&m.topic, &m.payload)
                                && r.body.request.as_deref() == Some(id.as_str())
                            {
                                return Ok(Some(AlarmAckReply {
                                    request: id.clone(),
                                    ok: false,
                                    message: r.body.reason,
                                    alarm: None,
                                }));
                            }
                        }
                    }
                }
            };
            let reply = tokio::time::timeout(Duration::from_secs(20), answer).await;
            bus.disconnect().await;
            match reply {
                Ok(Ok(Some(r))) => Ok(r),
                Ok(Err(e)) => Err(e),
                _ => bail!(
                    "no answer from site {site} on {url} within 20 s (the request was sent 4 times): is `kakou run` running for this site?"
                ),
            }
        })?;
        if !reply.ok {
            bail!("refused: {}", reply.message);
        }
        match &reply.alarm {
            Some(a) => println!("{}", line(a)),
            None => println!("alarm {} acknowledged", self.id),
        }
        Ok(ExitCode::SUCCESS)
    }
}
