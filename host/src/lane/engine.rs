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
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::assembly::{Assembled, Assembler, merge};
use super::ops::{OperatorAction, OperatorReply, OperatorRequest};
use super::ruleset::RuleSet;
use super::{LaneError, PassageMessage, state_for};
use crate::bus::{AlarmMessage, Outbox};
use crate::config::LaneConfig;
use crate::device::DeviceCommand;
use crate::store::{
    AuditEntry, ManualAction, NewAlarm, OutboxMessage, PassageRecord, PassageState, Store,
    StoreError, StoreLookups, StoredReply, WriteTx, Writer,
};

/// What every lane of a site shares.
pub struct LaneContext {
    /// Site id.
    pub site: String,
    /// Customs office code.
    pub office: String,
    /// The store, for reads (rules' look-ups, the passages an action names).
    pub store: Store,
    /// Every write goes through the store writer: lanes never commit on the executor, and
    /// concurrent lanes share one durable commit.
    pub writer: Writer,
    /// The rule set in force; replaced whole by a swap.
    pub ruleset: RwLock<RuleSet>,
    /// Builds passage and alarm messages and wakes the publisher after they are committed.
    pub outbox: Outbox,
    /// Where lane events go (the daemon answers operators from them).
    pub events: mpsc::Sender<LaneEvent>,
    /// Send every event, not only [`LaneEvent::Reply`]. The daemon needs only the replies:
    /// passages and alarms leave through the outbox, so the rest would only wake it for
    /// nothing, several times a truck. Tests and tools that watch a lane set it.
    pub observe: bool,
}

impl LaneContext {
    /// Sends `event` if it is wanted (see [`LaneContext::observe`]). Waits while the
    /// receiver's queue is full; a receiver that has gone is ignored.
    pub async fn emit(&self, event: LaneEvent) {
        if self.observe || matches!(event, LaneEvent::Reply { .. }) {
            let _ = self.events.send(event).await;
        }
    }
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
    pub barrier: Option<mpsc::Sender<DeviceCommand>>,
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
    /// What became of a barrier command for a released truck.
    Barrier {
        /// Lane id.
        lane: String,
        /// Passage id.
        passage: String,
        /// The barrier device took the command (written to its link); false: it did not,
        /// and `lane.barrier` was raised.
        confirmed: bool,
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
    barrier: Option<mpsc::Sender<DeviceCommand>>,
    assembler: Assembler,
    /// Passages of this lane waiting for an operator, oldest first.
    waiting: VecDeque<String>,
    /// The lane's latest passage: the truck standing in the lane. Only its release moves
    /// the barrier.
    current: Option<String>,
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
            current: None,
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
                self.current = records.last().map(|r| r.passage.id.clone());
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
                let answer = match self.stored_answer(&id) {
                    Some(first) => first,
                    None => match self.operate(&id, &request).await {
                        Ok(answer) => answer,
                        Err(e) => {
                            tracing::warn!(lane = %self.config.id, "operator {}: {e}", request.operator);
                            let answer = OperatorReply {
                                request: id.clone(),
                                ok: false,
                                message: e.to_string(),
                                passage: None,
                            };
                            // A retry of a refused request is refused the same way.
                            self.remember(&id, &answer).await;
                            answer
                        }
                    },
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
        self.ctx.emit(event).await;
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
        let result = match self.evaluate_off_executor(passage) {
            Ok(mut record) => {
                record.created_ms = record.passage.now_ms;
                record.updated_ms = record.passage.now_ms;
                let alarms = self.alarms_for(&record, "decided");
                self.write(&record, "decided", alarms.clone(), |_| Ok(()))
                    .await
                    .map(|()| (record, alarms))
            }
            Err(e) => Err(e),
        };
        match result {
            Ok((record, alarms)) => {
                let id = record.passage.id.clone();
                self.current = Some(id);
                let opens = record.outcome == Some(Outcome::Release)
                    && record.state == PassageState::Decided;
                self.after(record, "decided", alarms, opens).await;
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

    /// [`Worker::evaluate`] with the executor told that this thread blocks for a while
    /// (rules plugins run for tens to hundreds of microseconds).
    fn evaluate_off_executor(&self, passage: Passage) -> Result<PassageRecord, LaneError> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| self.evaluate(passage))
            }
            _ => self.evaluate(passage),
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
        // What this lane reads from devices, so rules can tell "not read" from "not measured
        // here" (a category C lane without a scale has no `weight`).
        let required: Vec<&str> = self.assembler.required().iter().map(|k| k.name()).collect();
        set_attribute(&mut passage, "required", &required.join(","));

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

    /// Writes a record, its outbox message and its alarms in one durable transaction (plus
    /// `more`), through the store writer.
    async fn write(
        &self,
        record: &PassageRecord,
        cause: &str,
        alarms: Vec<AlarmMessage>,
        mut more: impl FnMut(&mut WriteTx) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(), LaneError> {
        let me = MessageBuilder {
            outbox: self.ctx.outbox.clone(),
        };
        let passage = me.passage(record, cause);
        let alarms = me.alarms(record, alarms);
        let record = record.clone();
        self.ctx
            .writer
            .write(move |tx| {
                tx.put_passage(&record)?;
                tx.outbox_push(&passage)?;
                for (m, alarm) in &alarms {
                    tx.outbox_push(m)?;
                    tx.raise_alarm(&m.message_id, alarm, record.updated_ms, 1)?;
                }
                more(tx)
            })
            .await?;
        self.ctx.outbox.wake();
        Ok(())
    }

    /// The stored first answer to request `id`, if it was answered before.
    ///
    /// When that cannot be read, the request is not carried out: acting without knowing
    /// whether it was acted on could release a second truck.
    fn stored_answer(&self, id: &str) -> Option<OperatorReply> {
        let stored = self
            .ctx
            .store
            .snapshot()
            .and_then(|s| s.request_answer_as::<OperatorReply>(id));
        match stored {
            Ok(answer) => answer,
            Err(e) => {
                tracing::error!(lane = %self.config.id, "cannot read request {id}: {e}");
                Some(OperatorReply {
                    request: id.to_owned(),
                    ok: false,
                    message: format!(
                        "not carried out: cannot tell whether request {id} was carried out \
                         before ({e}); check the passage with `kakou query` and send a new request"
                    ),
                    passage: None,
                })
            }
        }
    }

    /// Keeps the answer to request `id` (a refusal: nothing else was written).
    async fn remember(&self, id: &str, answer: &OperatorReply) {
        let stored = StoredReply {
            at_ms: now_ms(),
            reply: serde_json::to_value(answer).unwrap_or_default(),
        };
        let id = id.to_owned();
        let r: Result<bool, StoreError> = self
            .ctx
            .writer
            .write(move |tx| tx.request_answered(&id, &stored))
            .await;
        if let Err(e) = r {
            tracing::error!(lane = %self.config.id, "cannot keep an answer: {e}");
        }
    }

    /// The alarms a recorded passage raises: its verdict's (when just decided), and why the
    /// barrier stays down (unless it is released, cancelled or inspected).
    fn alarms_for(&self, record: &PassageRecord, cause: &str) -> Vec<AlarmMessage> {
        let id = &record.passage.id;
        let lane = Some(self.config.id.clone());
        let mut alarms = Vec::new();
        if let Some(v) = &record.verdict
            && cause == "decided"
        {
            for a in &v.alarms {
                alarms.push(AlarmMessage {
                    code: a.code.clone(),
                    lane: lane.clone(),
                    device: None,
                    passage: Some(id.clone()),
                    severity: a.severity,
                    message: a.message.clone(),
                });
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
            alarms.push(AlarmMessage {
                code: code.into(),
                lane,
                device: None,
                passage: Some(id.clone()),
                severity: if outcome == Outcome::Manual {
                    Severity::Warning
                } else {
                    Severity::Critical
                },
                message: format!(
                    "{id}: barrier stays down ({outcome:?}): {}",
                    reasons.join("; ")
                ),
            });
        }
        alarms
    }

    /// Acts on a recorded passage: barrier (only when `opens`), waiting list, events.
    async fn after(
        &mut self,
        record: PassageRecord,
        cause: &str,
        alarms: Vec<AlarmMessage>,
        opens: bool,
    ) {
        let id = record.passage.id.clone();
        self.waiting.retain(|w| *w != id);
        if record.state == PassageState::Manual {
            self.waiting.push_back(id.clone());
        }
        if opens {
            self.open_barrier(&id);
        }
        for a in alarms {
            self.emit(LaneEvent::Alarm {
                lane: self.config.id.clone(),
                passage: a.passage,
                code: a.code,
                severity: a.severity,
                message: a.message,
            })
            .await;
        }
        self.emit(LaneEvent::Recorded {
            record,
            cause: cause.to_owned(),
            opened: opens && self.barrier.is_some(),
        })
        .await;
    }

    /// Whether an operator's change releases the truck standing in the lane: a waiting
    /// passage, the lane's latest, released now. Record changes after the truck has gone
    /// (backfill, write-off) never move the barrier.
    fn releases_standing_truck(&self, before: &PassageRecord, after: &PassageRecord) -> bool {
        matches!(
            before.state,
            PassageState::Manual | PassageState::Inspection | PassageState::Pending
        ) && after.outcome == Some(Outcome::Release)
            && matches!(after.state, PassageState::Decided | PassageState::Inspected)
            && self.current.as_deref() == Some(before.passage.id.as_str())
    }

    /// Pulses the barrier for a released passage, confirmed: the barrier's device task says
    /// whether the command reached its link. A command that did not is sent again while the
    /// pulse lasts; one that never does raises `lane.barrier` naming the passage, so an
    /// operator opens the barrier by hand. Runs beside the lane: the next truck is not held up.
    fn open_barrier(&self, passage: &str) {
        let Some(b) = self.barrier.clone() else {
            return;
        };
        let pulse = self.config.flow.pulse;
        let ms = u32::try_from(pulse.as_millis()).unwrap_or(u32::MAX);
        let (ctx, lane, passage) = (self.ctx.clone(), self.config.id.clone(), passage.to_owned());
        tokio::spawn(async move {
            let give_up = tokio::time::Instant::now() + pulse.max(Duration::from_millis(500));
            let mut attempts = 0u32;
            let failure = loop {
                attempts += 1;
                let (tx, rx) = oneshot::channel();
                let command = DeviceCommand {
                    command: Command::Pulse(ms),
                    receipt: Some(tx),
                };
                let why = if b.send(command).await.is_err() {
                    break "the barrier device has stopped".to_owned();
                } else {
                    match rx.await {
                        Ok(Ok(_)) => break String::new(),
                        Ok(Err(e)) => e.to_string(),
                        Err(_) => "the barrier device has stopped".to_owned(),
                    }
                };
                if tokio::time::Instant::now() >= give_up {
                    break format!("{why} (after {attempts} attempts)");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let confirmed = failure.is_empty();
            if !confirmed {
                let alarm = AlarmMessage {
                    code: "lane.barrier".into(),
                    lane: Some(lane.clone()),
                    device: None,
                    passage: Some(passage.clone()),
                    severity: Severity::Critical,
                    message: format!(
                        "{passage} was released but the barrier of lane {lane} did not take the open command: {failure}; open it by hand"
                    ),
                };
                let at = now_ms();
                let stored = alarm.to_record();
                let message = ctx.outbox.message_confirmed_by(
                    ctx.outbox.topics().alarm(),
                    format!("{passage}:barrier"),
                    at,
                    alarm.clone(),
                    crate::store::Confirm::Broker,
                );
                let written: Result<(), StoreError> = ctx
                    .writer
                    .write(move |tx| {
                        tx.outbox_push(&message)?;
                        tx.raise_alarm(&message.message_id, &stored, at, 1)
                            .map(drop)
                    })
                    .await;
                match written {
                    Ok(_) => ctx.outbox.wake(),
                    Err(e) => tracing::error!(%lane, "barrier alarm not recorded: {e}"),
                }
                tracing::error!(%lane, "{}", alarm.message);
                ctx.emit(LaneEvent::Alarm {
                    lane: lane.clone(),
                    passage: Some(passage.clone()),
                    code: alarm.code,
                    severity: alarm.severity,
                    message: alarm.message,
                })
                .await;
            }
            ctx.emit(LaneEvent::Barrier {
                lane,
                passage,
                confirmed,
            })
            .await;
        });
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

    /// The passage an action names. Every action names its passage: acting on "the oldest
    /// waiting one" would let a retried request act on the next truck.
    fn target(&self, named: Option<&String>) -> Result<String, LaneError> {
        named.cloned().ok_or_else(|| LaneError::PassageNotNamed {
            lane: self.config.id.clone(),
            waiting: self.waiting.iter().cloned().collect(),
        })
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

    /// Carries out an operator's request `request_id`: the change, its audit entry, its
    /// outbox messages and the answer are one transaction, so the request acts once however
    /// often it is sent. Only the release of the truck standing in the lane moves the barrier.
    async fn operate(
        &mut self,
        request_id: &str,
        request: &OperatorRequest,
    ) -> Result<OperatorReply, LaneError> {
        let now = now_ms();
        let who = request.operator.clone();
        let action = |name: &str, note: Option<String>| ManualAction {
            who: who.clone(),
            at_ms: now,
            action: name.to_owned(),
            note,
        };
        let name = request.action.name();
        let (before, planned, manual) = match &request.action {
            OperatorAction::Complete { passage, readings } => {
                super::validate_keyed(readings)?;
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
                let decided = self.evaluate_off_executor(p)?;
                let mut planned = before.clone();
                planned.passage = decided.passage;
                planned.verdict = decided.verdict;
                planned.outcome = decided.outcome;
                planned.state = decided.state;
                planned.decided_by = decided.decided_by;
                planned.vehicle = decided.vehicle;
                planned.documents = decided.documents;
                let note = Some(describe_readings(readings));
                (before, planned, action(name, note))
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
                let mut planned = before.clone();
                planned.outcome = Some(outcome);
                planned.state = state_for(outcome);
                (before, planned, action(name, Some(reason.clone())))
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
                let mut planned = before.clone();
                planned.state = PassageState::Inspected;
                planned.outcome = Some(if *passed {
                    Outcome::Release
                } else {
                    Outcome::Refuse
                });
                (before, planned, action(name, Some(text)))
            }
            OperatorAction::Backfill { passage, readings } => {
                super::validate_keyed(readings)?;
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
                let mut planned = before.clone();
                planned.passage = p;
                let note = Some(describe_readings(readings));
                (before, planned, action(name, note))
            }
            OperatorAction::Cancel { passage, reason } => {
                let id = self.target(passage.as_ref())?;
                let before = self.load(&id)?;
                if before.state == PassageState::Closed {
                    return Err(self.not_applicable(&before, "the truck has gone"));
                }
                let mut planned = before.clone();
                planned.state = PassageState::Cancelled;
                (before, planned, action(name, Some(reason.clone())))
            }
            OperatorAction::WriteOff {
                plate,
                direction,
                reason,
            } => {
                let record = self
                    .write_off(request_id, &who, plate, *direction, reason, now)
                    .await?;
                let answer = reply_for(request_id, &record, false);
                self.after(record, name, Vec::new(), false).await;
                return Ok(answer);
            }
        };
        let opens = matches!(
            request.action,
            OperatorAction::Complete { .. }
                | OperatorAction::Release { .. }
                | OperatorAction::Inspected { .. }
        ) && self.releases_standing_truck(&before, &planned);
        let (record, alarms, answer) = self
            .update(request_id, &before.passage.id, manual, planned, opens)
            .await?;
        self.after(record, name, alarms, opens).await;
        Ok(answer)
    }

    /// Changes a passage for an operator: record, manual action, audit entry, outbox messages
    /// (passage and alarms) and the request's answer in one transaction.
    async fn update(
        &self,
        request_id: &str,
        id: &str,
        action: ManualAction,
        planned: PassageRecord,
        opens: bool,
    ) -> Result<(PassageRecord, Vec<AlarmMessage>, OperatorReply), LaneError> {
        let cause = action.action.clone();
        let alarms = self.alarms_for(&planned, &cause);
        let (ctx, lane_alarms) = (self.ctx.clone(), alarms.clone());
        let (request_id, id) = (request_id.to_owned(), id.to_owned());
        // The messages need the record as written (its update time and action count), so
        // they are built inside the transaction.
        let me = MessageBuilder {
            outbox: self.ctx.outbox.clone(),
        };
        let record = self
            .ctx
            .writer
            .write(move |tx| {
                let planned = planned.clone();
                let after = tx.manual_update(&id, action.clone(), move |r| *r = planned)?;
                tx.outbox_push(&me.passage(&after, &cause))?;
                // Why the barrier stayed down, when it no longer does (or for another reason
                // now), is cleared by the daemon; the rules' alarms and a barrier that did not
                // open wait for an operator.
                let gone: Vec<&str> = HOLD_ALARMS
                    .iter()
                    .copied()
                    .filter(|c| !lane_alarms.iter().any(|a| a.code == *c))
                    .collect();
                tx.clear_passage_alarms(&after.passage.id, &gone, after.updated_ms)?;
                for (m, alarm) in me.alarms(&after, lane_alarms.clone()) {
                    tx.outbox_push(&m)?;
                    tx.raise_alarm(&m.message_id, &alarm, after.updated_ms, 1)?;
                }
                let answer = reply_for(&request_id, &after, opens);
                let stored = StoredReply {
                    at_ms: after.updated_ms,
                    reply: serde_json::to_value(&answer).unwrap_or_default(),
                };
                tx.request_answered(&request_id, &stored)?;
                Ok::<_, StoreError>((after, answer))
            })
            .await?;
        ctx.outbox.wake();
        let (record, answer) = record;
        Ok((record, alarms, answer))
    }

    /// Records the movement a two-plate vehicle's balance misses, with the request's answer.
    async fn write_off(
        &self,
        request_id: &str,
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
        let audit = AuditEntry {
            who: who.to_owned(),
            when_ms: now,
            action: "vehicle.write-off".into(),
            subject: normalised,
            before: Some(serde_json::json!({ "balance": before })),
            after: Some(serde_json::json!({ "balance": before + delta, "reason": reason })),
        };
        let stored = StoredReply {
            at_ms: now,
            reply: serde_json::to_value(reply_for(request_id, &record, false)).unwrap_or_default(),
        };
        let request_id = request_id.to_owned();
        self.write(&record, "write-off", Vec::new(), move |tx| {
            tx.audit(audit.clone())?;
            tx.request_answered(&request_id, &stored).map(drop)
        })
        .await?;
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

/// The alarms saying why a passage's barrier stays down (raised by `alarms_for`).
const HOLD_ALARMS: [&str; 3] = ["lane.manual", "lane.inspect", "lane.refuse"];

/// Builds a lane's outbox messages; cloned into store-writer jobs, which build them from the
/// record as written.
#[derive(Clone)]
struct MessageBuilder {
    outbox: Outbox,
}

impl MessageBuilder {
    /// The passage message. Its id (passage, update time, action count) is the same for every
    /// resend of this state of the passage.
    fn passage(&self, record: &PassageRecord, cause: &str) -> OutboxMessage {
        let id = format!(
            "{}:{}:{}",
            record.passage.id,
            record.updated_ms,
            record.manual_actions.len()
        );
        let topic = self.outbox.topics().passage(&record.passage.lane.id);
        let body = PassageMessage {
            record: record.clone(),
            cause: cause.to_owned(),
        };
        self.outbox.message(topic, id, record.updated_ms, body)
    }

    /// The alarm messages of a passage's state, ids stable in the same way, each with the
    /// alarm as the store keeps it (under its message's id).
    fn alarms(
        &self,
        record: &PassageRecord,
        alarms: Vec<AlarmMessage>,
    ) -> Vec<(OutboxMessage, NewAlarm)> {
        let topic = self.outbox.topics().alarm();
        alarms
            .into_iter()
            .enumerate()
            .map(|(n, a)| {
                let id = format!(
                    "{}:{}:{}:alarm-{n}",
                    record.passage.id,
                    record.updated_ms,
                    record.manual_actions.len()
                );
                let stored = a.to_record();
                let m = self.outbox.message_confirmed_by(
                    topic.clone(),
                    id,
                    record.updated_ms,
                    a,
                    crate::store::Confirm::Broker,
                );
                (m, stored)
            })
            .collect()
    }
}

/// The answer to a request that changed `record`.
fn reply_for(request_id: &str, record: &PassageRecord, opens: bool) -> OperatorReply {
    let name = record
        .manual_actions
        .last()
        .map_or("decided", |a| a.action.as_str());
    OperatorReply {
        request: request_id.to_owned(),
        ok: true,
        message: format!(
            "{name} {}: {:?}, {:?}{}",
            record.passage.id,
            record.outcome.unwrap_or_default(),
            record.state,
            if opens { ", barrier opened" } else { "" }
        ),
        passage: Some(record.clone()),
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

#[cfg(test)]
#[path = "engine_tests.rs"]
mod engine_tests;
