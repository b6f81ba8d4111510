//! The demo's operator console: it watches the bus like any operator station would, prints a
//! readable lane log, and plays the operator (keying in what a lane could not read, marking
//! inspections) by publishing requests on the lanes' `manual` topics.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::time::Duration;

use kakou_plugin_sdk::model::{CheckResult, Outcome, ReadingValue, Severity};
use tokio::sync::{mpsc, watch};

use super::plan::{OperatorPlan, Truck};
use crate::bus::payload::{self, Envelope};
use crate::bus::{BusClient, ClientOptions, Message, QoS, Topics};
use crate::daemon::AlarmMessage;
use crate::lane::{OperatorAction, OperatorReply, OperatorRequest, PassageMessage};
use crate::store::{PassageRecord, PassageState};

/// The operator the demo plays.
const OPERATOR: &str = "O-17";

/// What the demo saw, per lane.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Final outcomes: release, manual, inspect, refuse.
    pub outcomes: [u32; 4],
    /// Passages an operator acted on.
    pub manual_actions: u32,
    /// Passages decided.
    pub passages: u32,
}

/// Watches and operates until `expected` trucks are done (0: until `shutdown`).
pub async fn run(
    url: &str,
    site: &str,
    plan: Vec<Truck>,
    expected: usize,
    out: &mut (dyn Write + Send),
    mut shutdown: watch::Receiver<bool>,
) -> Result<BTreeMap<String, Tally>, crate::bus::BusError> {
    let topics = Topics::new(site);
    let client_id = format!("{site}-console");
    let mut options = ClientOptions::new(url, &client_id);
    options.clean_session = true;
    let (bus, mut rx, _links) = BusClient::connect(&options)?;
    bus.subscribe(
        &format!("{}/lane/+/passage", topics.root()),
        QoS::AtLeastOnce,
    )
    .await?;
    bus.subscribe(&topics.alarm(), QoS::AtLeastOnce).await?;
    let reply_topic = topics.reply(&client_id);
    bus.subscribe(&reply_topic, QoS::AtLeastOnce).await?;

    let mut queues: HashMap<String, VecDeque<Truck>> = HashMap::new();
    for t in plan {
        queues
            .entry(format!("L0{}", t.lane + 1))
            .or_default()
            .push_back(t);
    }
    let mut trucks: HashMap<String, Truck> = HashMap::new();
    let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
    let mut done = 0usize;
    let mut next_id = 0u64;
    let (later_tx, mut later) = mpsc::unbounded_channel::<(String, OperatorRequest)>();
    loop {
        let m: Message = tokio::select! {
            m = rx.recv() => match m { Some(m) => m, None => break },
            Some((lane, request)) = later.recv() => {
                next_id += 1;
                let id = format!("{client_id}-{next_id}");
                let mut request = request;
                request.reply_to = Some(reply_topic.clone());
                let bytes = Envelope::new(id, crate::device::now_ms(), request).to_bytes();
                bus.publish(&topics.manual(&lane), bytes, QoS::AtLeastOnce, false).await?;
                continue;
            }
            _ = crate::device::transport::stopped(&mut shutdown) => break,
        };
        if m.topic.ends_with("/passage") {
            let Ok(msg) = payload::parse::<PassageMessage>(&m.topic, &m.payload) else {
                continue;
            };
            let PassageMessage { record, cause } = msg.body;
            let lane = record.passage.lane.id.clone();
            let id = record.passage.id.clone();
            if cause == "decided" {
                let truck = queues.get_mut(&lane).and_then(VecDeque::pop_front);
                if let Some(t) = &truck {
                    trucks.insert(id.clone(), t.clone());
                }
                print_decided(out, &record, truck.as_ref());
                tally.entry(lane.clone()).or_default().passages += 1;
            } else {
                print_action(out, &record, &cause);
                tally.entry(lane.clone()).or_default().manual_actions += 1;
            }
            let truck = trucks.get(&id);
            // The operator's part: after a moment, as a person at the console would.
            let action = match (record.state, truck) {
                (PassageState::Manual, Some(t)) if cause == "decided" => match &t.on_manual {
                    OperatorPlan::Complete(readings) => Some(OperatorAction::Complete {
                        passage: Some(id.clone()),
                        readings: readings.clone(),
                    }),
                    OperatorPlan::Refuse(reason) => Some(OperatorAction::Refuse {
                        passage: Some(id.clone()),
                        reason: reason.clone(),
                    }),
                    OperatorPlan::Inspected(..) | OperatorPlan::None => {
                        Some(OperatorAction::Refuse {
                            passage: Some(id.clone()),
                            reason: "data could not be completed at the gate".into(),
                        })
                    }
                },
                // Still waiting after the operator's entry: send it to inspection.
                (PassageState::Manual, _) => Some(OperatorAction::Inspect {
                    passage: Some(id.clone()),
                    reason: "could not be cleared at the console".into(),
                }),
                (PassageState::Inspection, t) => {
                    let (passed, note) = match t.map(|t| &t.on_inspect) {
                        Some(OperatorPlan::Inspected(p, n)) => (*p, n.clone()),
                        _ => (true, "nothing found".into()),
                    };
                    Some(OperatorAction::Inspected {
                        passage: id.clone(),
                        passed,
                        note: Some(note),
                    })
                }
                _ => None,
            };
            match action {
                Some(action) => {
                    let delay = if matches!(action, OperatorAction::Inspected { .. }) {
                        2_000
                    } else {
                        1_200
                    };
                    let tx = later_tx.clone();
                    let lane = lane.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                        let _ = tx.send((
                            lane,
                            OperatorRequest {
                                operator: OPERATOR.into(),
                                action,
                                reply_to: None,
                            },
                        ));
                    });
                }
                None => {
                    // A final state: the truck has its answer.
                    if let Some(outcome) = record.outcome {
                        tally.entry(lane).or_default().outcomes[outcome as usize] += 1;
                    }
                    done += 1;
                    if expected > 0 && done >= expected {
                        break;
                    }
                }
            }
        } else if m.topic == reply_topic {
            if let Ok(r) = payload::parse::<OperatorReply>(&m.topic, &m.payload)
                && !r.body.ok
            {
                let _ = writeln!(
                    out,
                    "           operator request refused: {}",
                    r.body.message
                );
            }
        } else if let Ok(a) = payload::parse::<AlarmMessage>(&m.topic, &m.payload) {
            // Lane outcomes are printed with their passage; show the rest.
            if !a.body.code.starts_with("lane.") && a.body.severity != Severity::Info {
                let _ = writeln!(
                    out,
                    "           alarm {} {}: {}",
                    a.body.lane.as_deref().unwrap_or("site"),
                    a.body.code,
                    a.body.message
                );
            }
        }
    }
    bus.disconnect().await;
    Ok(tally)
}

fn clock(ms: i64) -> String {
    let secs = ms.div_euclid(1000) + 8 * 3600; // China Standard Time
    let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    format!("{h:02}:{m:02}:{s:02}")
}

fn outcome_text(o: Option<Outcome>) -> &'static str {
    match o {
        Some(Outcome::Release) => "RELEASE",
        Some(Outcome::Manual) => "MANUAL ",
        Some(Outcome::Inspect) => "INSPECT",
        Some(Outcome::Refuse) => "REFUSE ",
        None => "-",
    }
}

fn readings(record: &PassageRecord) -> String {
    let mut parts = Vec::new();
    for o in &record.passage.observations {
        let mark = if o.superseded { "✗" } else { "" };
        let keyed = if o.operator.is_some() { " (keyed)" } else { "" };
        let text = match &o.reading.value {
            ReadingValue::Plate(p) => format!("plate {}{mark} ({}%)", p.text, p.confidence),
            ReadingValue::Tag(t) => format!("tag …{}", &t.epc[t.epc.len().saturating_sub(6)..]),
            ReadingValue::Container(c) => format!(
                "container {}{mark} {} ({}%)",
                c.number,
                c.iso_type.as_deref().unwrap_or(""),
                c.confidence
            ),
            ReadingValue::Weight(w) => format!("{} kg", w.kg),
            ReadingValue::Card(c) => format!("card {}", c.uid),
            _ => continue,
        };
        parts.push(format!("{text}{keyed}"));
    }
    parts.join(" · ")
}

fn print_decided(out: &mut (dyn Write + Send), r: &PassageRecord, truck: Option<&Truck>) {
    let p = &r.passage;
    let note = truck.map(|t| format!("  — {}", t.note)).unwrap_or_default();
    let _ = writeln!(out, "\n{} {} {}{note}", clock(p.now_ms), p.lane.id, p.id);
    let _ = writeln!(out, "           read    {}", readings(r));
    let mut passed = 0;
    if let Some(v) = &r.verdict {
        for c in &v.checks {
            if c.result == CheckResult::Pass {
                passed += 1;
                continue;
            }
            let mark = if c.result == CheckResult::Fail {
                "✗"
            } else {
                "?"
            };
            let _ = writeln!(out, "           {mark} {:<26} {}", c.code, c.message);
        }
    }
    let by: Vec<String> = r.decided_by.iter().map(ToString::to_string).collect();
    let _ = writeln!(out, "           {passed} checks passed ({})", by.join(", "));
    let barrier = if r.outcome == Some(Outcome::Release) {
        "barrier opens"
    } else {
        "barrier stays down"
    };
    let _ = writeln!(out, "           → {}  {barrier}", outcome_text(r.outcome));
}

fn print_action(out: &mut (dyn Write + Send), r: &PassageRecord, cause: &str) {
    let last = r.manual_actions.last();
    let who = last.map_or("?", |a| a.who.as_str());
    let note = last
        .and_then(|a| a.note.clone())
        .map(|n| format!(": {n}"))
        .unwrap_or_default();
    let barrier = if r.outcome == Some(Outcome::Release)
        && matches!(r.state, PassageState::Decided | PassageState::Inspected)
    {
        "  barrier opens"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "{} {}   operator {who} {cause}{note} → {}{barrier}",
        clock(r.updated_ms),
        r.passage.lane.id,
        outcome_text(r.outcome).trim_end()
    );
}
