//! `kakou outbox`: where every message that must arrive is in its life. Asked of the running
//! daemon (`--site`: what its publisher holds now, with attempts and the last error) or read
//! from the store (`--store`: waiting and delivered messages with their times, daemon running
//! or not).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use super::lane::{SiteBus, site_bus};
use crate::bus::outbox::OutboxReport;
use crate::bus::payload::{self, Envelope};
use crate::bus::{BusClient, Link, QoS};
use crate::daemon::{QueryKind, QueryReply, QueryRequest};
use crate::query::{UtcOffset, format_ms};
use crate::store::{OutboxEntry, Store};

/// Arguments of `kakou outbox`.
#[derive(Debug, Args)]
pub struct OutboxArgs {
    /// Ask the running daemon of this site manifest.
    #[arg(long, conflicts_with = "store", required_unless_present = "store")]
    site: Option<PathBuf>,
    /// Broker URL, instead of the manifest's (with --site).
    #[arg(long, requires = "site")]
    broker: Option<String>,
    /// Read this store file instead.
    #[arg(long)]
    store: Option<PathBuf>,
    /// With --store: also the last N delivered messages.
    #[arg(long, default_value_t = 0)]
    delivered: usize,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

impl OutboxArgs {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match (&self.site, &self.store) {
            (Some(site), _) => self.live(site.clone()),
            (None, Some(store)) => self.stored(store.clone()),
            (None, None) => {
                bail!("give --site (ask the running daemon) or --store (read the file)")
            }
        }
    }

    fn live(&self, site: PathBuf) -> anyhow::Result<ExitCode> {
        let SiteBus {
            site,
            url,
            topics,
            client,
            options,
        } = site_bus(&site, self.broker.as_deref(), None)?;
        let reply_topic = topics.reply(&client);
        let id = format!("{client}-{}", crate::device::now_ms());
        let request = QueryRequest {
            kind: QueryKind::Outbox,
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
        let report: OutboxReport =
            serde_json::from_value(reply.result).context("reading the daemon's outbox report")?;
        if self.json {
            println!("{}", serde_json::to_string(&report)?);
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "publisher {}; {} queued, {} in flight, {} waiting for their receivers; {} delivered and {} publishes since start{}",
            if report.connected {
                "connected"
            } else {
                "NOT connected"
            },
            report.queued,
            report.in_flight,
            report.broker_acked,
            report.delivered,
            report.publishes,
            report
                .oldest_age_ms
                .map(|a| format!("; oldest waiting {:.1} s", a as f64 / 1000.0))
                .unwrap_or_default(),
        );
        if let Some(e) = &report.last_error {
            println!("last connection error: {e}");
        }
        for m in &report.messages {
            println!(
                "{:>8}  {:<12} {:>3} tries  {:>8.1} s  {}  {}{}",
                m.id,
                format!("{:?}", m.stage).to_lowercase(),
                m.attempts,
                m.age_ms as f64 / 1000.0,
                m.topic,
                m.message_id,
                why(m.last_error.as_deref())
            );
        }
        Ok(ExitCode::SUCCESS)
    }

    fn stored(&self, path: PathBuf) -> anyhow::Result<ExitCode> {
        let store = Store::open_for_reading(&path)
            .with_context(|| format!("opening the store {}", path.display()))?;
        let snap = store.snapshot()?;
        let waiting = snap.outbox_after(0, usize::MAX)?;
        let mut delivered: Vec<OutboxEntry> = Vec::new();
        if self.delivered > 0 {
            // The history keeps ids in order; the last N are the newest.
            let all = snap.outbox_delivered_after(0, usize::MAX)?;
            let skip = all.len().saturating_sub(self.delivered);
            delivered = all.into_iter().skip(skip).collect();
        }
        for e in delivered.iter().chain(&waiting) {
            let m = &e.message;
            if self.json {
                let line = serde_json::json!({
                    "id": e.id, "message_id": m.message_id, "topic": m.topic,
                    "state": m.state(), "confirm": m.confirm, "attempts": m.attempts,
                    "created_ms": m.created_ms, "broker_acked_ms": m.broker_acked_ms,
                    "delivered_ms": m.delivered_ms, "last_error": m.last_error,
                });
                println!("{line}");
                continue;
            }
            let time = |ms: Option<i64>| {
                ms.map(|t| format_ms(t, UtcOffset::UTC))
                    .unwrap_or_else(|| "-".into())
            };
            println!(
                "{:>8}  {:<13} queued {}  delivered {}  {}  {}{}",
                e.id,
                serde_json::to_value(m.state())?
                    .as_str()
                    .unwrap_or_default(),
                time(Some(m.created_ms)),
                time(m.delivered_ms),
                m.topic,
                m.message_id,
                why(m.last_error.as_deref())
            );
        }
        if !self.json {
            println!(
                "{} waiting, {} delivered shown",
                waiting.len(),
                delivered.len()
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// A message's last error as the tables print it: `  (why)`, or nothing.
fn why(error: Option<&str>) -> String {
    error.map(|e| format!("  ({e})")).unwrap_or_default()
}
