//! One task per lane: readings and operator actions in, passages recorded, barrier commanded,
//! events out. A lane's inputs are handled one at a time, so a passage is never decided twice
//! at once, and a rule-set swap takes effect between two passages, never inside one.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kakou_plugin_sdk::Lookups;
use kakou_plugin_sdk::model::{
    CargoKind, Check, CheckResult, Command, Direction, DocumentRef, Outcome, Passage, Plate,
    Reading, ReadingValue, Setting, Severity, Source,
};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::assembly::{Assembled, Assembler, merge};
use super::ops::{OperatorAction, OperatorReply, OperatorRequest};
use super::ruleset::RuleSet;
use super::{LaneError, PassageMessage, state_for};
use crate::bus::Topics;
use crate::bus::payload::Envelope;
use crate::config::LaneConfig;
use crate::store::{
    AuditEntry, Confirm, ManualAction, OutboxMessage, PassageRecord, PassageState, Store,
    StoreLookups, WriteTx,
};

/// What every lane of a site shares.
pub struct LaneContext {
    /// Site id.
    pub site: String,
    /// Customs office code.
    pub office: String,
    /// The store.
    pub store: Store,
    /// The rule set in force; replaced whole by a swap.
    pub ruleset: RwLock<RuleSet>,
    /// Bus topics.
    pub topics: Topics,
    /// Wakes the outbox publisher after a passage is written.
    pub outbox_wake: Arc<Notify>,
    /// Whose acknowledgement takes a passage message out of the outbox.
    pub confirm: Confirm,
    /// Where lane events go (the daemon publishes them).
    pub events: mpsc::Sender<LaneEvent>,
}

impl std::fmt::Debug for LaneContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneContext")
            .field("site", &self.site)
            .finish_non_exhaustive()
    }
}

/// One lane's configuration and its barrier.
#[derive(Debug)]
pub struct LaneSettings {
    /// The lane as the site manifest has it.
    pub config: LaneConfig,
    /// Commands to the barrier device, when the lane has one.
    pub barrier: Option<mpsc::Sender<Command>>,
}

/// Something for a lane to handle.
#[derive(Debug)]
pub enum LaneInput {
    /// A device reading.
    Reading {
        /// Device id.
        device: String,
        /// The reading.
        reading: Reading,
        /// Unix ms.
        at_ms: i64,
    },
    /// An operator's action.
    Operator {
        /// The request's message id.
        id: String,
        /// The request.
        request: OperatorRequest,
        /// Where the answer goes, for a caller in this process.
        reply: Option<oneshot::Sender<OperatorReply>>,
    },
}

/// What a lane did, for the bus and the console.
#[derive(Debug, Clone, PartialEq)]
pub enum LaneEvent {
    /// A truck's passage started.
    Started {
        /// Lane id.
        lane: String,
        /// Passage id.
        passage: String,
    },
    /// A passage was recorded (decided, or changed by an operator).
    Recorded {
        /// The record.
        record: PassageRecord,
        /// `decided` or the operator action.
        cause: String,
        /// The barrier was told to open.
        opened: bool,
    },
    /// An alarm.
    Alarm {
        /// Lane id.
        lane: String,
        /// Passage id, when it concerns one.
        passage: Option<String>,
        /// Alarm code.
        code: String,
        /// Severity.
        severity: Severity,
        /// What happened.
        message: String,
    },
    /// An answer to an operator's request that came over the bus.
    Reply {
        /// Where to publish it.
        topic: String,
        /// The answer.
        reply: OperatorReply,
    },
}

/// A running lane.
#[derive(Debug, Clone)]
pub struct Lane {
    /// Lane id.
    pub id: String,
    /// Its inputs.
    pub inputs: mpsc::Sender<LaneInput>,
}

/// Starts a lane's task.
pub fn spawn_lane(
    ctx: Arc<LaneContext>,
    settings: LaneSettings,
    mut shutdown: watch::Receiver<bool>,
) -> (Lane, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<LaneInput>(1024);
    let id = settings.config.id.clone();
    let mut worker = Worker::new(ctx, settings);
    let task = tokio::spawn(async move {
        worker.recover_waiting();
        loop {
            let sleep = match worker.assembler.deadline_ms() {
                Some(d) => Duration::from_millis(u64::try_from(d - now_ms()).unwrap_or(0)),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                input = rx.recv() => match input {
                    Some(i) => worker.handle(i).await,
                    None => return,
                },
                _ = tokio::time::sleep(sleep) => {
                    if let Some(a) = worker.assembler.tick(now_ms()) {
                        worker.decide(a).await;
                    }
                }
                _ = crate::device::transport::stopped(&mut shutdown) => return,
            }
        }
    });
    (Lane { id, inputs: tx }, task)
}

fn now_ms() -> i64 {
    crate::device::now_ms()
}

struct Worker {
    ctx: Arc<LaneContext>,
    config: LaneConfig,
    barrier: Option<mpsc::Sender<Command>>,
    assembler: Assembler,
    /// Passages of this lane waiting for an operator, oldest first.
    waiting: VecDeque<String>,
}

impl Worker {
    fn new(ctx: Arc<LaneContext>, settings: LaneSettings) -> Self {
        let assembler = Assembler::new(&ctx.site, &ctx.office, &settings.config);
        Worker {
            ctx,
            config: settings.config,
            barrier: settings.barrier,
            assembler,
            waiting: VecDeque::new(),
        }
    }

    fn lane(&self) -> &str {
        &self.config.id
    }

    /// Passages left waiting by a previous run (the last day) wait again.
    fn recover_waiting(&mut self) {
        let now = now_ms();
        let found = self
            .ctx
            .store
            .passages_by_lane_between(self.lane(), now - 86_400_000, now + 1);
        match found {
            Ok(records) => {
                self.waiting = records
                    .into_iter()
                    .filter(|r| r.state == PassageState::Manual)
                    .map(|r| r.passage.id)
                    .collect();
            }
            Err(e) => tracing::error!(lane = %self.config.id, "cannot list waiting passages: {e}"),
        }
    }

    async fn handle(&mut self, input: LaneInput) {
        match input {
            LaneInput::Reading {
                device,
                reading,
                at_ms,
            } => {
                let was_open = self.assembler.open().map(|p| p.id.clone());
                let done = self.assembler.offer(&device, reading, at_ms);
                let now_open = self.assembler.open().map(|p| p.id.clone());
                let started = match (&done, &was_open, &now_open) {
                    (Some(a), None, _) => Some(a.passage.id.clone()),
                    (_, None, Some(id)) => Some(id.clone()),
                    _ => None,
                };
                if let Some(passage) = started {
                    self.emit(LaneEvent::Started {
                        lane: self.config.id.clone(),
                        passage,
                    })
                    .await;
                }
                if let Some(a) = done {
                    self.decide(a).await;
                }
            }
            LaneInput::Operator { id, request, reply } => {
                let reply_to = request.reply_to.clone();
                let answer = match self.operate(&request).await {
                    Ok((record, message)) => OperatorReply {
                        request: id,
                        ok: true,
                        message,
                        passage: record,
                    },
                    Err(e) => {
                        tracing::warn!(lane = %self.config.id, "operator {}: {e}", request.operator);
                        OperatorReply {
                            request: id,
                            ok: false,
                            message: e.to_string(),
                            passage: None,
                        }
                    }
                };
                if let Some(topic) = reply_to {
                    self.emit(LaneEvent::Reply {
                        topic,
                        reply: answer.clone(),
                    })
                    .await;
                }
                if let Some(tx) = reply {
                    let _ = tx.send(answer);
                }
            }
        }
    }

    async fn emit(&self, event: LaneEvent) {
        let _ = self.ctx.events.send(event).await;
    }

    /// Decides an assembled passage, records it, acts.
    async fn decide(&mut self, assembled: Assembled) {
        let Assembled {
            mut passage,
            missing,
        } = assembled;
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|k| k.name()).collect();
            set_attribute(&mut passage, "missing", &names.join(","));
        }
        let result = self.evaluate(passage).and_then(|mut record| {
            record.created_ms = record.passage.now_ms;
            record.updated_ms = record.passage.now_ms;
            self.write(&record, "decided", |_| Ok(()))?;
            Ok(record)
        });
        match result {
            Ok(record) => {
                self.after(record, "decided").await;
            }
            Err(e) => {
                tracing::error!(lane = %self.config.id, "passage not recorded: {e}");
                self.alarm(
                    None,
                    "lane.store",
                    Severity::Critical,
                    format!("passage not recorded: {e}"),
                )
                .await;
            }
        }
    }

    /// Runs the rule set on a passage (lane settings from the parameter library) and builds
    /// its record.
    fn evaluate(&self, mut passage: Passage) -> Result<PassageRecord, LaneError> {
        let now = passage.now_ms;
        let store_lookups = StoreLookups::new(&self.ctx.store, now)?;
        let ruleset = self
            .ctx
            .ruleset
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let lookups = Arc::new(ruleset.lookups(store_lookups));
        let lane = &self.config.id;
        // Parameter library items 2 and 3: lane direction and cargo type, live.
        if let Some(d) = lookups.parameter(&format!("lane.{lane}.direction")) {
            match d.trim() {
                "import" => passage.lane.direction = Direction::Import,
                "export" => passage.lane.direction = Direction::Export,
                other => tracing::warn!(
                    "parameter lane.{lane}.direction = {other:?}: expected import or export"
                ),
            }
        }
        if let Some(c) = lookups.parameter(&format!("lane.{lane}.cargo")) {
            match c.trim() {
                "container" => passage.lane.cargo = CargoKind::Container,
                "bulk" => passage.lane.cargo = CargoKind::Bulk,
                "any" => passage.lane.cargo = CargoKind::Any,
                other => tracing::warn!(
                    "parameter lane.{lane}.cargo = {other:?}: expected container, bulk or any"
                ),
            }
        }
        let congested = lookups
            .parameter(&format!("lane.{lane}.congestion"))
            .is_some_and(|v| matches!(v.trim(), "true" | "on" | "1"));
        if congested {
            set_attribute(&mut passage, "congestion-mode", "true");
        } else {
            passage.attributes.retain(|s| s.key != "congestion-mode");
        }
        set_attribute(&mut passage, "ruleset", &ruleset.id());

        let decision = ruleset.evaluate(&passage, lookups.clone());
        let mut verdict = decision.verdict;
        if let Some(e) = lookups.take_error() {
            verdict.check(
                Check::new(
                    "store.read",
                    CheckResult::Unknown,
                    format!("a look-up failed, so no verdict can be trusted: {e}"),
                ),
                Outcome::Manual,
            );
        }
        let outcome = verdict.outcome;
        let vehicle = passage
            .plate()
            .and_then(|p| lookups.vehicle(&p.text))
            .or_else(|| passage.tag().and_then(|t| lookups.vehicle_by_tag(&t.epc)))
            .map(|v| v.plate);
        let mut documents: Vec<DocumentRef> = Vec::new();
        let mut add = |d: kakou_plugin_sdk::model::Document| {
            if !documents.iter().any(|r| r.number == d.number) {
                documents.push(DocumentRef {
                    kind: document_kind(&d),
                    number: d.number,
                });
            }
        };
        for c in passage.containers() {
            lookups
                .documents_by_container(&c.number)
                .into_iter()
                .for_each(&mut add);
        }
        if let Some(p) = &vehicle {
            lookups
                .documents_by_vehicle(p)
                .into_iter()
                .for_each(&mut add);
        }
        if congested && outcome == Outcome::Release {
            let mut needed = Vec::new();
            if passage.containers().is_empty() && passage.lane.cargo != CargoKind::Bulk {
                needed.push("container");
            }
            if passage.plate().is_none() {
                needed.push("plate");
            }
            if !needed.is_empty() {
                set_attribute(&mut passage, "backfill-needed", &needed.join(","));
            }
        }
        Ok(PassageRecord {
            passage,
            verdict: Some(verdict),
            outcome: Some(outcome),
            state: state_for(outcome),
            decided_by: decision.decided_by,
            vehicle,
            documents,
            manual_actions: Vec::new(),
            created_ms: now,
            updated_ms: now,
        })
    }

    /// Writes a record and its outbox message in one transaction (plus `more`).
    fn write(
        &self,
        record: &PassageRecord,
        cause: &str,
        more: impl FnOnce(&mut WriteTx) -> Result<(), crate::store::StoreError>,
    ) -> Result<(), LaneError> {
        let message = self.message(record, cause);
        self.ctx.store.write(|tx| {
            tx.put_passage(record)?;
            tx.outbox_push(&message)?;
            more(tx)
        })?;
        self.ctx.outbox_wake.notify_one();
        Ok(())
    }

    fn message(&self, record: &PassageRecord, cause: &str) -> OutboxMessage {
        let id = format!(
            "{}:{}:{}",
            record.passage.id,
            record.updated_ms,
            record.manual_actions.len()
        );
        let topic = self.ctx.topics.passage(&record.passage.lane.id);
        let body = PassageMessage {
            record: record.clone(),
            cause: cause.to_owned(),
        };
        let at = record.updated_ms;
        match self.ctx.confirm {
            Confirm::Broker => {
                OutboxMessage::new(topic, Envelope::new(id, at, body).to_bytes(), at)
            }
            Confirm::Receiver => {
                let bytes = Envelope::new(id.clone(), at, body)
                    .with_ack(self.ctx.topics.outbox_ack())
                    .to_bytes();
                OutboxMessage::confirmed_by_receiver(topic, bytes, id, at)
            }
        }
    }

    /// Acts on a recorded passage: barrier, waiting list, events, alarms.
    async fn after(&mut self, record: PassageRecord, cause: &str) -> bool {
        let id = record.passage.id.clone();
        self.waiting.retain(|w| *w != id);
        if record.state == PassageState::Manual {
            self.waiting.push_back(id.clone());
        }
        let release = record.outcome == Some(Outcome::Release)
            && matches!(
                record.state,
                PassageState::Decided | PassageState::Inspected | PassageState::Closed
            );
        let opened = if release {
            self.open_barrier(&id).await
        } else {
            false
        };
        if let Some(v) = &record.verdict
            && cause == "decided"
        {
            for a in &v.alarms {
                self.alarm(Some(&id), &a.code, a.severity, a.message.clone())
                    .await;
            }
        }
        if let Some(outcome) = record.outcome
            && outcome != Outcome::Release
            && !matches!(
                record.state,
                PassageState::Cancelled | PassageState::Inspected
            )
        {
            let reasons: Vec<String> = record
                .verdict
                .iter()
                .flat_map(|v| &v.checks)
                .filter(|c| c.result != CheckResult::Pass)
                .map(|c| format!("{}: {}", c.code, c.message))
                .collect();
            let code = match outcome {
                Outcome::Manual => "lane.manual",
                Outcome::Inspect => "lane.inspect",
                _ => "lane.refuse",
            };
            self.alarm(
                Some(&id),
                code,
                if outcome == Outcome::Manual {
                    Severity::Warning
                } else {
                    Severity::Critical
                },
                format!(
                    "{id}: barrier stays down ({outcome:?}): {}",
                    reasons.join("; ")
                ),
            )
            .await;
        }
        self.emit(LaneEvent::Recorded {
            record,
            cause: cause.to_owned(),
            opened,
        })
        .await;
        opened
    }

    async fn open_barrier(&self, passage: &str) -> bool {
        let Some(b) = &self.barrier else {
            return false;
        };
        let ms = u32::try_from(self.config.flow.pulse.as_millis()).unwrap_or(u32::MAX);
        if b.send(Command::Pulse(ms)).await.is_err() {
            self.alarm(
                Some(passage),
                "lane.barrier",
                Severity::Critical,
                format!("{passage}: the barrier device has stopped; open it by hand"),
            )
            .await;
            return false;
        }
        true
    }

    async fn alarm(&self, passage: Option<&str>, code: &str, severity: Severity, message: String) {
        self.emit(LaneEvent::Alarm {
            lane: self.config.id.clone(),
            passage: passage.map(str::to_owned),
            code: code.to_owned(),
            severity,
            message,
        })
        .await;
    }

    /// The passage an action names, or the lane's oldest waiting one.
    fn target(&self, named: Option<&String>) -> Result<String, LaneError> {
        match named {
            Some(p) => Ok(p.clone()),
            None => self
                .waiting
                .front()
                .cloned()
                .ok_or_else(|| LaneError::NothingWaiting {
                    lane: self.config.id.clone(),
                }),
        }
    }

    fn load(&self, id: &str) -> Result<PassageRecord, LaneError> {
        match self.ctx.store.passage(id)? {
            Some(r) if r.passage.lane.id == self.config.id => Ok(r),
            _ => Err(LaneError::UnknownPassage {
                lane: self.config.id.clone(),
                passage: id.to_owned(),
            }),
        }
    }

    fn not_applicable(&self, r: &PassageRecord, reason: &str) -> LaneError {
        LaneError::NotApplicable {
            lane: self.config.id.clone(),
            passage: r.passage.id.clone(),
            state: r.state,
            reason: reason.to_owned(),
        }
    }

    /// Carries out an operator's action; returns the changed record and what was done.
    async fn operate(
        &mut self,
        request: &OperatorRequest,
    ) -> Result<(Option<PassageRecord>, String), LaneError> {
        let now = now_ms();
        let who = request.operator.clone();
        let action = |name: &str, note: Option<String>| ManualAction {
            who: who.clone(),
            at_ms: now,
            action: name.to_owned(),
            note,
        };
        let name = request.action.name();
        let record = match &request.action {
            OperatorAction::Complete { passage, readings } => {
                let id = self.target(passage.as_ref())?;
                let before = self.load(&id)?;
                if !matches!(
                    before.state,
                    PassageState::Manual | PassageState::Inspection | PassageState::Pending
                ) {
                    return Err(
                        self.not_applicable(&before, "only a waiting passage can be completed")
                    );
                }
                let mut p = before.passage.clone();
                for r in readings {
                    merge(&mut p, &who, r.clone(), now, Source::Manual, Some(&who));
                }
                p.now_ms = now;
                p.attributes.retain(|s| s.key != "missing");
                let decided = self.evaluate(p)?;
                let note = Some(describe_readings(readings));
                self.update(&id, action(name, note), move |r| {
                    r.passage = decided.passage;
                    r.verdict = decided.verdict;
                    r.outcome = decided.outcome;
                    r.state = decided.state;
                    r.decided_by = decided.decided_by;
                    r.vehicle = decided.vehicle;
                    r.documents = decided.documents;
                })?
            }
            OperatorAction::Release { passage, reason }
            | OperatorAction::Inspect { passage, reason }
            | OperatorAction::Refuse { passage, reason } => {
                let id = self.target(passage.as_ref())?;
                let before = self.load(&id)?;
                if matches!(before.state, PassageState::Cancelled | PassageState::Closed) {
                    return Err(self.not_applicable(&before, "the truck has gone"));
                }
                let outcome = match &request.action {
                    OperatorAction::Release { .. } => Outcome::Release,
                    OperatorAction::Inspect { .. } => Outcome::Inspect,
                    _ => Outcome::Refuse,
                };
                self.update(&id, action(name, Some(reason.clone())), |r| {
                    r.outcome = Some(outcome);
                    r.state = state_for(outcome);
                })?
            }
            OperatorAction::Inspected {
                passage,
                passed,
                note,
            } => {
                let before = self.load(passage)?;
                if before.state != PassageState::Inspection {
                    return Err(self.not_applicable(
                        &before,
                        "only a passage sent to inspection can be marked inspected",
                    ));
                }
                let text = format!(
                    "{}{}",
                    if *passed { "passed" } else { "failed" },
                    note.as_deref()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default()
                );
                let passed = *passed;
                self.update(passage, action(name, Some(text)), |r| {
                    r.state = PassageState::Inspected;
                    r.outcome = Some(if passed {
                        Outcome::Release
                    } else {
                        Outcome::Refuse
                    });
                })?
            }
            OperatorAction::Backfill { passage, readings } => {
                let before = self.load(passage)?;
                let mut p = before.passage.clone();
                for r in readings {
                    merge(&mut p, &who, r.clone(), now, Source::Backfill, Some(&who));
                }
                let still = backfill_still_needed(&p);
                p.attributes.retain(|s| s.key != "backfill-needed");
                if !still.is_empty() {
                    set_attribute(&mut p, "backfill-needed", &still.join(","));
                }
                let note = Some(describe_readings(readings));
                self.update(passage, action(name, note), move |r| r.passage = p)?
            }
            OperatorAction::Cancel { passage, reason } => {
                let id = self.target(passage.as_ref())?;
                let before = self.load(&id)?;
                if before.state == PassageState::Closed {
                    return Err(self.not_applicable(&before, "the truck has gone"));
                }
                self.update(&id, action(name, Some(reason.clone())), |r| {
                    r.state = PassageState::Cancelled;
                })?
            }
            OperatorAction::WriteOff {
                plate,
                direction,
                reason,
            } => self.write_off(&who, plate, *direction, reason, now)?,
        };
        let opened = self.after(record.clone(), name).await;
        let message = format!(
            "{} {}: {:?}, {:?}{}",
            name,
            record.passage.id,
            record.outcome.unwrap_or_default(),
            record.state,
            if opened { ", barrier opened" } else { "" }
        );
        Ok((Some(record), message))
    }

    /// Changes a passage for an operator: record, manual action, audit entry and outbox
    /// message in one transaction.
    fn update(
        &self,
        id: &str,
        action: ManualAction,
        change: impl FnOnce(&mut PassageRecord),
    ) -> Result<PassageRecord, LaneError> {
        let cause = action.action.clone();
        let record = self.ctx.store.write(|tx| {
            let after = tx.manual_update(id, action, change)?;
            tx.outbox_push(&self.message(&after, &cause))?;
            Ok::<_, crate::store::StoreError>(after)
        })?;
        self.ctx.outbox_wake.notify_one();
        Ok(record)
    }

    /// Records the movement a two-plate vehicle's balance misses.
    fn write_off(
        &self,
        who: &str,
        plate: &str,
        direction: Direction,
        reason: &str,
        now: i64,
    ) -> Result<PassageRecord, LaneError> {
        let normalised = kakou_plugin_sdk::proto::plate::normalize(plate);
        let before = self.ctx.store.snapshot()?.balance(&normalised)?;
        let mut lane = self.assembler_lane();
        lane.direction = direction;
        let passage = Passage {
            id: format!("{}-{}-writeoff-{now}", self.ctx.site, self.config.id),
            site: self.ctx.site.clone(),
            office: self.ctx.office.clone(),
            lane,
            started_ms: now,
            now_ms: now,
            observations: vec![kakou_plugin_sdk::model::Observation {
                device: who.to_owned(),
                at_ms: now,
                source: Source::Backfill,
                operator: Some(who.to_owned()),
                superseded: false,
                reading: Plate {
                    text: normalised.clone(),
                    confidence: 100,
                    ..Default::default()
                }
                .into(),
            }],
            attributes: vec![Setting::new("write-off", reason)],
        };
        let record = PassageRecord {
            passage,
            verdict: None,
            outcome: Some(Outcome::Release),
            state: PassageState::Closed,
            decided_by: Vec::new(),
            vehicle: Some(normalised.clone()),
            documents: Vec::new(),
            manual_actions: vec![ManualAction {
                who: who.to_owned(),
                at_ms: now,
                action: "write-off".into(),
                note: Some(reason.to_owned()),
            }],
            created_ms: now,
            updated_ms: now,
        };
        let delta = if direction == Direction::Import {
            1
        } else {
            -1
        };
        self.write(&record, "write-off", |tx| {
            tx.audit(AuditEntry {
                who: who.to_owned(),
                when_ms: now,
                action: "vehicle.write-off".into(),
                subject: normalised.clone(),
                before: Some(serde_json::json!({ "balance": before })),
                after: Some(serde_json::json!({ "balance": before + delta, "reason": reason })),
            })
            .map(drop)
        })?;
        Ok(record)
    }

    fn assembler_lane(&self) -> kakou_plugin_sdk::model::Lane {
        kakou_plugin_sdk::model::Lane {
            id: self.config.id.clone(),
            category: self.config.category,
            direction: self.config.direction,
            cargo: self.config.cargo,
            station: self.config.station.clone(),
        }
    }
}

fn set_attribute(passage: &mut Passage, key: &str, value: &str) {
    passage.attributes.retain(|s| s.key != key);
    passage.attributes.push(Setting::new(key, value));
}

/// What a congested release still lacks.
fn backfill_still_needed(p: &Passage) -> Vec<&'static str> {
    let mut needed = Vec::new();
    if p.containers().is_empty() && p.lane.cargo != CargoKind::Bulk {
        needed.push("container");
    }
    if p.plate().is_none() {
        needed.push("plate");
    }
    needed
}

fn document_kind(d: &kakou_plugin_sdk::model::Document) -> String {
    use kakou_plugin_sdk::model::DocumentKind as K;
    match d.kind {
        K::TransitRelease => "transit-release",
        K::LocalClearance => "local-clearance",
        K::PortEvacuation => "port-evacuation",
        K::Bonded => "bonded",
        K::CustomsDeclaration => "customs-declaration",
        K::Other => "other",
    }
    .to_owned()
}

/// A short account of keyed-in readings for the audit note.
fn describe_readings(readings: &[Reading]) -> String {
    readings
        .iter()
        .map(|r| match &r.value {
            ReadingValue::Container(c) => format!("container {}", c.number),
            ReadingValue::Plate(p) => format!("plate {}", p.text),
            ReadingValue::Tag(t) => format!("tag {}", t.epc),
            ReadingValue::Weight(w) => format!("weight {} kg", w.kg),
            ReadingValue::Card(c) => format!("card {}", c.uid),
            ReadingValue::Document(d) => format!("document {} {}", d.kind, d.number),
            other => other.kind().to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
