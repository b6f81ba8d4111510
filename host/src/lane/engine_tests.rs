//! The lane engine driven through [`spawn_lane`] with rules written in Rust
//! ([`RuleSet::native`]), a real store in a temporary folder, a real store writer, an outbox
//! without a publisher (its rows stay in the store, for the tests to read), and a barrier
//! channel the test answers itself.
//!
//! Whether the barrier got a command is read off its channel: once the lane has stopped and
//! every barrier task it started has ended, the channel closes, so draining it gives every
//! command there ever was, with no waiting on a clock.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kakou_plugin_sdk::Lookups;
use kakou_plugin_sdk::model::{
    Card, CardKind, Check, CheckResult, Command, Direction, Outcome, Passage, Plate, Reading,
    ReadingValue, Verdict,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::*;
use crate::bus::payload;
use crate::bus::{Outbox, Topics};
use crate::config::SiteManifest;
use crate::device::{CommandFailed, CommandSent, DeviceCommand};
use crate::lane::ruleset::native::NativeRule;
use crate::store::{
    Confirm, OutboxEntry, PassageRecord, PassageState, PluginVersion, Store, Writer,
};

const SITE: &str = "t";
const LANE: &str = "L01";
/// The barrier pulse: short, so a barrier that never takes its command is given up on after
/// the engine's floor of 500 ms.
const PULSE_MS: u32 = 1;
/// No barrier command.
const NONE: [Command; 0] = [];

/// A category C bulk lane whose card reading completes a passage at once.
fn lane_config() -> LaneConfig {
    let text = format!(
        "[site]\nid = \"{SITE}\"\noffice = \"5201\"\nruleset = \"cn-baseline\"\n[[lane]]\nid = \"{LANE}\"\ncategory = \"C\"\n\
         direction = \"import\"\ncargo = \"bulk\"\nstation = \"HP01\"\nrequired = [\"card\"]\n\
         pulse-ms = {PULSE_MS}\n"
    );
    let m = SiteManifest::parse(std::path::Path::new("site.toml"), &text).expect("manifest");
    m.lanes[0].clone()
}

/// A rule deciding every passage `outcome`, with one check saying so.
fn deciding(name: &str, outcome: Outcome) -> NativeRule {
    NativeRule::new(name, move |_: &Passage, _: &dyn Lookups| {
        let mut v = Verdict::default();
        let result = match outcome {
            Outcome::Release => CheckResult::Pass,
            Outcome::Manual => CheckResult::Unknown,
            _ => CheckResult::Fail,
        };
        v.check(Check::new("test.rule", result, "as the test says"), outcome);
        Ok(v)
    })
}

fn card(uid: &str) -> Reading {
    Card {
        uid: uid.into(),
        kind: CardKind::Em4100,
    }
    .into()
}

fn plate(text: &str) -> Reading {
    Plate {
        text: text.into(),
        confidence: 100,
        ..Default::default()
    }
    .into()
}

/// Waits for `f`, failing the test (instead of hanging it) if the lane never gets there.
async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing after 60 s"))
}

/// One lane with everything it talks to.
struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    lane: Lane,
    task: JoinHandle<()>,
    stop: watch::Sender<bool>,
    events: mpsc::Receiver<LaneEvent>,
    barrier: mpsc::Receiver<DeviceCommand>,
    next_card: u32,
}

impl Rig {
    fn new(rules: Vec<NativeRule>) -> Rig {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("kakou.redb")).expect("open store");
        let (events_tx, events) = mpsc::channel(1024);
        let ctx = Arc::new(LaneContext {
            site: SITE.into(),
            office: "5201".into(),
            store: store.clone(),
            writer: Writer::spawn(store.clone()).expect("writer"),
            ruleset: RwLock::new(RuleSet::native("test", &[], rules)),
            outbox: Outbox::unpublished(Topics::new(SITE), Confirm::Broker),
            events: events_tx,
            observe: true,
        });
        let (barrier_tx, barrier) = mpsc::channel(16);
        let (stop, stopped) = watch::channel(false);
        let (lane, task) = spawn_lane(
            ctx,
            LaneSettings {
                config: lane_config(),
                barrier: Some(barrier_tx),
            },
            stopped,
        );
        Rig {
            _dir: dir,
            store,
            lane,
            task,
            stop,
            events,
            barrier,
            next_card: 0,
        }
    }

    /// A truck: its driver's card (a new one each time), and the passage as recorded.
    async fn truck(&mut self) -> (PassageRecord, bool) {
        self.next_card += 1;
        let reading = card(&format!("62E3086C{:02X}", self.next_card));
        self.lane
            .inputs
            .send(LaneInput::Reading {
                device: "card".into(),
                reading,
                at_ms: crate::device::now_ms(),
            })
            .await
            .expect("lane running");
        let (record, cause, opened) = self.recorded().await;
        assert_eq!(cause, "decided");
        (record, opened)
    }

    /// The next passage recorded: the record, why, and whether the barrier was told to open.
    async fn recorded(&mut self) -> (PassageRecord, String, bool) {
        within("a passage recorded", async {
            loop {
                match self.events.recv().await.expect("lane events") {
                    LaneEvent::Recorded {
                        record,
                        cause,
                        opened,
                    } => return (record, cause, opened),
                    _ => continue,
                }
            }
        })
        .await
    }

    /// What the barrier task says became of its command: confirmed or not.
    async fn barrier_outcome(&mut self) -> bool {
        within("the barrier's outcome", async {
            loop {
                if let LaneEvent::Barrier { confirmed, .. } =
                    self.events.recv().await.expect("lane events")
                {
                    return confirmed;
                }
            }
        })
        .await
    }

    /// Queues operator request `id` without waiting; returns where its answer comes.
    async fn send_request(
        &self,
        id: &str,
        action: OperatorAction,
    ) -> oneshot::Receiver<OperatorReply> {
        let (tx, rx) = oneshot::channel();
        self.lane
            .inputs
            .send(LaneInput::Operator {
                id: id.into(),
                request: OperatorRequest {
                    operator: "O-17".into(),
                    action,
                    reply_to: None,
                },
                reply: Some(tx),
            })
            .await
            .expect("lane running");
        rx
    }

    /// Operator request `id` and its answer.
    async fn request(&self, id: &str, action: OperatorAction) -> OperatorReply {
        let rx = self.send_request(id, action).await;
        within("an operator's answer", rx)
            .await
            .expect("the lane answers")
    }

    /// The next barrier command.
    async fn command(&mut self) -> DeviceCommand {
        within("a barrier command", self.barrier.recv())
            .await
            .expect("barrier channel open")
    }

    fn stored(&self, id: &str) -> PassageRecord {
        self.store
            .passage(id)
            .expect("read passage")
            .expect("passage stored")
    }

    /// The outbox rows on the alarm topic, as alarms.
    fn alarms(&self) -> Vec<AlarmMessage> {
        let topic = Topics::new(SITE).alarm();
        self.store
            .outbox_pending(usize::MAX)
            .expect("outbox")
            .into_iter()
            .filter(|e: &OutboxEntry| e.message.topic == topic)
            .map(|e| {
                payload::parse::<AlarmMessage>(&topic, &e.message.payload)
                    .expect("an alarm")
                    .body
            })
            .collect()
    }

    /// Stops the lane and returns every barrier command not taken yet: the channel closes
    /// once the lane and the barrier tasks it started have all let go of it.
    async fn stop(mut self) -> Vec<Command> {
        self.stop.send(true).expect("lane listening");
        within("the lane stopping", &mut self.task)
            .await
            .expect("lane task");
        let mut left = Vec::new();
        while let Some(c) = within("the barrier channel closing", self.barrier.recv()).await {
            left.push(c.command);
        }
        left
    }
}

fn release(passage: &str) -> OperatorAction {
    OperatorAction::Release {
        passage: Some(passage.into()),
        reason: "documents checked by hand".into(),
    }
}

fn answer(command: DeviceCommand, receipt: Result<CommandSent, CommandFailed>) {
    command
        .receipt
        .expect("the lane asks for a receipt")
        .send(receipt)
        .expect("the barrier task waits for its receipt");
}

#[tokio::test]
async fn a_released_passage_is_stored_before_the_barrier_gets_its_one_command() {
    let mut rig = Rig::new(vec![deciding("base", Outcome::Release)]);
    let (record, opened) = rig.truck().await;
    assert!(opened);
    assert_eq!(
        (record.outcome, record.state),
        (Some(Outcome::Release), PassageState::Decided)
    );

    let command = rig.command().await;
    assert_eq!(command.command, Command::Pulse(PULSE_MS));
    // The command is given only once the passage and its message are committed.
    let stored = rig.stored(&record.passage.id);
    assert_eq!(stored.state, PassageState::Decided);
    assert_eq!(stored.decided_by, [PluginVersion::new("base", "test")]);
    let passage_topic = Topics::new(SITE).passage(LANE);
    let messages = rig.store.outbox_pending(usize::MAX).expect("outbox");
    assert_eq!(
        messages
            .iter()
            .filter(|e| e.message.topic == passage_topic)
            .count(),
        1
    );

    answer(command, Ok(CommandSent { bytes: 8 }));
    assert!(rig.barrier_outcome().await, "the receipt confirms it");
    assert!(rig.alarms().is_empty(), "{:?}", rig.alarms());
    assert_eq!(rig.stop().await, NONE, "one command, not more");
}

#[tokio::test]
async fn a_manual_verdict_leaves_the_barrier_down_and_the_passage_waiting() {
    let mut rig = Rig::new(vec![deciding("base", Outcome::Manual)]);
    let (record, opened) = rig.truck().await;
    let id = record.passage.id.clone();
    assert!(!opened);
    assert_eq!(rig.stored(&id).state, PassageState::Manual);
    let alarms = rig.alarms();
    assert!(
        alarms
            .iter()
            .any(|a| a.code == "lane.manual" && a.passage.as_deref() == Some(id.as_str())),
        "{alarms:?}"
    );
    // Kept with its state, written with the passage: an offline station learns of it.
    let open = rig
        .store
        .snapshot()
        .expect("snap")
        .open_alarms()
        .expect("open");
    assert!(
        open.iter().any(|a| a.alarm.code == "lane.manual"
            && a.alarm.passage.as_deref() == Some(id.as_str())
            && a.count == 1
            && a.acknowledged.is_none()),
        "{open:?}"
    );
    // The lane lists it among its waiting passages.
    let unnamed = rig
        .request(
            "q-1",
            OperatorAction::Release {
                passage: None,
                reason: "which one?".into(),
            },
        )
        .await;
    assert!(!unnamed.ok);
    assert!(
        unnamed.message.ends_with(&format!("waiting: {id}")),
        "{}",
        unnamed.message
    );
    assert_eq!(rig.stop().await, NONE);
}

#[tokio::test]
async fn an_operator_releasing_the_waiting_truck_in_the_lane_lifts_the_barrier_once() {
    let mut rig = Rig::new(vec![deciding("base", Outcome::Manual)]);
    let (record, _) = rig.truck().await;
    let id = record.passage.id.clone();

    let reply = rig.request("r-1", release(&id)).await;
    assert!(reply.ok, "{}", reply.message);
    assert!(
        reply.message.ends_with(", barrier opened"),
        "{}",
        reply.message
    );
    let (after, cause, opened) = rig.recorded().await;
    assert_eq!(
        (after.passage.id.as_str(), cause.as_str(), opened),
        (id.as_str(), "release", true)
    );
    let command = rig.command().await;
    let stored = rig.stored(&id);
    assert_eq!(
        (stored.outcome, stored.state),
        (Some(Outcome::Release), PassageState::Decided)
    );
    let actions: Vec<&str> = stored
        .manual_actions
        .iter()
        .map(|a| a.action.as_str())
        .collect();
    assert_eq!(actions, ["release"]);
    // Why it waited is gone: the daemon cleared that alarm in the same transaction.
    let snap = rig.store.snapshot().expect("snap");
    assert!(snap.open_alarms().expect("open").is_empty());
    let all = snap.alarms_between(i64::MIN, i64::MAX).expect("all");
    let manual = all
        .iter()
        .find(|a| a.alarm.code == "lane.manual" && a.alarm.passage.as_deref() == Some(id.as_str()))
        .expect("the manual alarm, kept");
    assert_eq!(
        manual.cleared,
        Some(crate::store::AlarmClear {
            at_ms: stored.updated_ms,
            by: None
        })
    );
    drop(snap);
    answer(command, Ok(CommandSent { bytes: 8 }));
    assert!(rig.barrier_outcome().await);
    assert_eq!(rig.stop().await, NONE);
}

#[tokio::test]
async fn releasing_a_waiting_passage_once_the_next_truck_is_in_the_lane_leaves_the_barrier_alone() {
    let mut rig = Rig::new(vec![deciding("base", Outcome::Manual)]);
    let (first, _) = rig.truck().await;
    let (second, _) = rig.truck().await;
    assert_ne!(first.passage.id, second.passage.id);

    let reply = rig.request("r-1", release(&first.passage.id)).await;
    assert!(reply.ok, "{}", reply.message);
    assert!(!reply.message.contains("barrier"), "{}", reply.message);
    assert_eq!(rig.stored(&first.passage.id).state, PassageState::Decided);
    assert_eq!(rig.stop().await, NONE, "the barrier is the second truck's");
}

#[tokio::test]
async fn backfill_and_write_off_change_records_and_never_move_the_barrier() {
    let mut rig = Rig::new(vec![deciding("base", Outcome::Manual)]);
    let (record, _) = rig.truck().await;
    let id = record.passage.id.clone();

    let backfilled = rig
        .request(
            "b-1",
            OperatorAction::Backfill {
                passage: id.clone(),
                readings: vec![plate("粤B12345")],
            },
        )
        .await;
    assert!(backfilled.ok, "{}", backfilled.message);
    let stored = rig.stored(&id);
    assert_eq!(stored.state, PassageState::Manual, "not decided again");
    assert!(
        stored
            .passage
            .observations
            .iter()
            .any(|o| matches!(&o.reading.value, ReadingValue::Plate(p) if p.text == "粤B12345")),
        "{:?}",
        stored.passage.observations
    );

    let written_off = rig
        .request(
            "w-1",
            OperatorAction::WriteOff {
                plate: "粤B12345".into(),
                direction: Direction::Import,
                reason: "entered through gate 3, unrecorded".into(),
            },
        )
        .await;
    assert!(written_off.ok, "{}", written_off.message);
    let movement = written_off.passage.expect("the write-off's passage");
    assert_eq!(rig.stored(&movement.passage.id).state, PassageState::Closed);
    assert_eq!(rig.stop().await, NONE);
}

#[tokio::test]
async fn an_operator_request_sent_twice_acts_once_and_both_copies_get_the_first_answer() {
    let mut rig = Rig::new(vec![deciding("base", Outcome::Manual)]);
    let (record, _) = rig.truck().await;
    let id = record.passage.id.clone();

    // Both copies are queued before the first is answered, as a resend would be.
    let first = rig.send_request("r-1", release(&id)).await;
    let second = rig.send_request("r-1", release(&id)).await;
    let first = within("the first answer", first).await.expect("answered");
    let second = within("the second answer", second).await.expect("answered");
    assert!(first.ok, "{}", first.message);
    assert_eq!(second, first);

    let command = rig.command().await;
    answer(command, Ok(CommandSent { bytes: 8 }));
    assert!(rig.barrier_outcome().await);
    assert_eq!(rig.stored(&id).manual_actions.len(), 1);
    let audited = rig
        .store
        .snapshot()
        .expect("snapshot")
        .audit(1, 100)
        .expect("audit")
        .into_iter()
        .filter(|a| a.entry.subject == id)
        .count();
    assert_eq!(audited, 1);
    assert_eq!(rig.stop().await, NONE, "one command for one release");
}

#[tokio::test]
async fn a_barrier_that_never_takes_its_command_raises_one_alarm_naming_the_passage() {
    let mut rig = Rig::new(vec![deciding("base", Outcome::Release)]);
    let (record, opened) = rig.truck().await;
    let id = record.passage.id.clone();
    assert!(opened);

    // Every command is refused until the lane gives up.
    let mut attempts = 0;
    let confirmed = within("the barrier given up on", async {
        loop {
            tokio::select! {
                Some(c) = rig.barrier.recv() => {
                    attempts += 1;
                    answer(c, Err(CommandFailed::LinkDown("cable cut".into())));
                }
                Some(e) = rig.events.recv() => {
                    if let LaneEvent::Barrier { confirmed, passage, .. } = e {
                        assert_eq!(passage, id);
                        return confirmed;
                    }
                }
            }
        }
    })
    .await;
    assert!(!confirmed);
    assert!(attempts > 1, "sent again while the pulse lasts: {attempts}");

    let barrier: Vec<AlarmMessage> = rig
        .alarms()
        .into_iter()
        .filter(|a| a.code == "lane.barrier")
        .collect();
    assert_eq!(barrier.len(), 1, "{barrier:?}");
    let alarm = &barrier[0];
    assert_eq!(alarm.passage.as_deref(), Some(id.as_str()));
    assert!(
        alarm.message.contains("cable cut")
            && alarm
                .message
                .contains(&format!("after {attempts} attempts")),
        "{}",
        alarm.message
    );
    assert_eq!(rig.stop().await, NONE);
}

#[tokio::test]
async fn a_rule_that_declines_sends_the_passage_to_manual_with_an_alarm_naming_it() {
    let declining = NativeRule::new("picky", |_: &Passage, _: &dyn Lookups| {
        Err("no document for this cargo".to_owned())
    });
    let mut rig = Rig::new(vec![deciding("base", Outcome::Release), declining]);
    let (record, opened) = rig.truck().await;
    let id = record.passage.id.clone();
    assert!(!opened);
    assert_eq!(
        (record.outcome, record.state),
        (Some(Outcome::Manual), PassageState::Manual)
    );
    assert_eq!(
        record.decided_by,
        [
            PluginVersion::new("base", "test"),
            PluginVersion::new("picky", "test")
        ]
    );
    let checks = &record.verdict.as_ref().expect("verdict").checks;
    let failed = checks
        .iter()
        .find(|c| c.code == "rules.failed")
        .expect("rules.failed check");
    assert_eq!(failed.result, CheckResult::Unknown);
    assert_eq!(failed.subject.as_deref(), Some("picky"));
    assert!(
        failed.message.contains("no document for this cargo"),
        "{}",
        failed.message
    );
    let alarms = rig.alarms();
    for code in ["rules.failed", "lane.manual"] {
        assert!(
            alarms
                .iter()
                .any(|a| a.code == code && a.passage.as_deref() == Some(id.as_str())),
            "{code}: {alarms:?}"
        );
    }
    assert_eq!(rig.stop().await, NONE);
}

#[tokio::test]
async fn a_rule_that_panics_costs_one_verdict_and_the_lane_decides_the_next_truck() {
    // Panics on the first card only.
    let fragile = NativeRule::new("fragile", |p: &Passage, _: &dyn Lookups| {
        let first = p
            .observations
            .iter()
            .any(|o| matches!(&o.reading.value, ReadingValue::Card(c) if c.uid.ends_with("01")));
        assert!(!first, "index out of bounds");
        Ok(Verdict::default())
    });
    let mut rig = Rig::new(vec![fragile]);
    let (broken, opened) = rig.truck().await;
    assert!(!opened);
    assert_eq!(broken.state, PassageState::Manual);
    let failed = broken
        .verdict
        .as_ref()
        .expect("verdict")
        .checks
        .iter()
        .find(|c| c.code == "rules.failed")
        .expect("rules.failed check");
    assert!(failed.message.contains("trapped"), "{}", failed.message);

    let (next, opened) = rig.truck().await;
    assert!(opened, "the rule judged the next truck");
    assert_eq!(next.state, PassageState::Decided);
    let command = rig.command().await;
    answer(command, Ok(CommandSent { bytes: 8 }));
    assert!(rig.barrier_outcome().await);
    assert_eq!(rig.stop().await, NONE);
}
