//! Passages, verdicts and rule-set descriptions (WIT interfaces `passage` and `evaluation`).

use super::{Reading, ReadingValue, Setting, SettingSpec};
use super::{choice, record};

choice! {
    /// Lane direction.
    pub enum Direction {
        /// Into the controlled area.
        #[default]
        Import,
        /// Out of it.
        Export,
    }
}

choice! {
    /// What cargo a lane or a document is for.
    pub enum CargoKind {
        /// Containers.
        Container,
        /// Bulk and general cargo.
        Bulk,
        /// Either.
        #[default]
        Any,
    }
}

choice! {
    /// Lane equipment category.
    pub enum LaneCategory {
        /// Full automatic set.
        #[default]
        A,
        /// Operator keys in some readings.
        B,
        /// Operator keys in most readings.
        C,
    }
}

record! {
    /// The lane a passage happens on.
    pub struct Lane {
        /// Lane id within the site.
        pub id: String,
        /// Equipment category.
        pub category: LaneCategory,
        /// Import or export.
        pub direction: Direction,
        /// Cargo type served.
        pub cargo: CargoKind,
        /// Station / yard code.
        pub station: String,
    }
}

choice! {
    /// Where a reading came from.
    pub enum Source {
        /// A device.
        #[default]
        Device,
        /// An operator, while the truck waited.
        Manual,
        /// An operator, after the truck left (congestion mode).
        Backfill,
    }
}

record! {
    /// A reading as the lane received it.
    pub struct Observation {
        /// Device id, or the operator's id.
        pub device: String,
        /// Unix time, milliseconds.
        pub at_ms: i64,
        /// Device, manual or backfill.
        pub source: Source,
        /// Set on manual and backfill input.
        pub operator: Option<String>,
        /// The lane kept a better reading of the same kind instead.
        pub superseded: bool,
        /// The reading.
        pub reading: Reading,
    }
}

record! {
    /// Everything known about one truck's passage.
    pub struct Passage {
        /// Passage id.
        pub id: String,
        /// Site id.
        pub site: String,
        /// Customs office code.
        pub office: String,
        /// The lane.
        pub lane: Lane,
        /// Unix ms when it started.
        pub started_ms: i64,
        /// The decision time; rules use this, never a clock.
        pub now_ms: i64,
        /// All readings, in arrival order.
        pub observations: Vec<Observation>,
        /// Facts the host adds (e.g. "congestion-mode").
        pub attributes: Vec<Setting>,
    }
}

impl Passage {
    /// Readings in force (not superseded), in arrival order.
    pub fn current(&self) -> impl Iterator<Item = &ReadingValue> {
        self.observations
            .iter()
            .filter(|o| !o.superseded)
            .map(|o| &o.reading.value)
    }

    /// The last stable gross weight, else the last weight of any kind.
    pub fn weight(&self) -> Option<&super::Weight> {
        let weights: Vec<_> = self
            .current()
            .filter_map(|v| match v {
                ReadingValue::Weight(w) if !w.out_of_range => Some(w),
                _ => None,
            })
            .collect();
        weights
            .iter()
            .rev()
            .find(|w| w.stable && w.kind == super::WeightKind::Gross)
            .or(weights.last())
            .copied()
    }

    /// The plate in force (best confidence among current plate readings).
    pub fn plate(&self) -> Option<&super::Plate> {
        self.current()
            .filter_map(|v| match v {
                ReadingValue::Plate(p) => Some(p),
                _ => None,
            })
            .max_by_key(|p| p.confidence)
    }

    /// The e-plate tag in force.
    pub fn tag(&self) -> Option<&super::Tag> {
        self.current().find_map(|v| match v {
            ReadingValue::Tag(t) => Some(t),
            _ => None,
        })
    }

    /// The driver's card in force.
    pub fn card(&self) -> Option<&super::Card> {
        self.current().find_map(|v| match v {
            ReadingValue::Card(c) => Some(c),
            _ => None,
        })
    }

    /// Containers in force, one per number.
    pub fn containers(&self) -> Vec<&super::Container> {
        let mut out: Vec<&super::Container> = Vec::new();
        for v in self.current() {
            if let ReadingValue::Container(c) = v {
                match out.iter_mut().find(|o| o.number == c.number) {
                    Some(o) if o.confidence < c.confidence => *o = c,
                    Some(_) => {}
                    None => out.push(c),
                }
            }
        }
        out
    }

    /// Documents presented at the gate.
    pub fn documents(&self) -> impl Iterator<Item = &super::DocumentRef> {
        self.current().filter_map(|v| match v {
            ReadingValue::Document(d) => Some(d),
            _ => None,
        })
    }

    /// A host attribute's value.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|s| s.key == key)
            .map(|s| s.value.as_str())
    }
}

choice! {
    /// A decision, in increasing severity (the most severe of several rule sets wins).
    pub enum Outcome {
        /// Lift the barrier.
        #[default]
        Release,
        /// Data missing: an operator completes it.
        Manual,
        /// Send to the inspection area.
        Inspect,
        /// Turn the truck away.
        Refuse,
    }
}

choice! {
    /// Result of one check.
    pub enum CheckResult {
        /// Passed.
        #[default]
        Pass,
        /// Failed.
        Fail,
        /// Data needed to decide are missing.
        Unknown,
    }
}

record! {
    /// One check and its result.
    pub struct Check {
        /// Reason code, e.g. "weight.tolerance".
        pub code: String,
        /// Pass, fail or unknown.
        pub result: CheckResult,
        /// Why, for the operator.
        pub message: String,
        /// What was checked.
        pub subject: Option<String>,
    }
}

impl Check {
    /// A check result with a message.
    pub fn new(code: &str, result: CheckResult, message: impl Into<String>) -> Self {
        Check {
            code: code.to_owned(),
            result,
            message: message.into(),
            subject: None,
        }
    }

    /// Names what was checked.
    pub fn about(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
}

choice! {
    /// Alarm severity.
    pub enum Severity {
        /// For the record.
        #[default]
        Info,
        /// Needs attention.
        Warning,
        /// Needs action now.
        Critical,
    }
}

record! {
    /// An alarm for the operators.
    pub struct Alarm {
        /// Alarm code.
        pub code: String,
        /// How urgent.
        pub severity: Severity,
        /// What happened.
        pub message: String,
    }
}

record! {
    /// The verdict on a passage.
    pub struct Verdict {
        /// The decision.
        pub outcome: Outcome,
        /// Every check made.
        pub checks: Vec<Check>,
        /// Alarms raised.
        pub alarms: Vec<Alarm>,
    }
}

impl Verdict {
    /// Records a check; a failed check raises the outcome to at least `on_fail`, an unknown one
    /// to at least manual processing.
    pub fn check(&mut self, check: Check, on_fail: Outcome) -> &mut Self {
        let needed = match check.result {
            CheckResult::Pass => Outcome::Release,
            CheckResult::Fail => on_fail,
            CheckResult::Unknown => Outcome::Manual,
        };
        self.outcome = self.outcome.max(needed);
        self.checks.push(check);
        self
    }

    /// Raises an alarm.
    pub fn alarm(
        &mut self,
        code: &str,
        severity: Severity,
        message: impl Into<String>,
    ) -> &mut Self {
        self.alarms.push(Alarm {
            code: code.to_owned(),
            severity,
            message: message.into(),
        });
        self
    }

    /// Folds another verdict into this one: the most severe outcome wins, checks and alarms add up.
    pub fn merge(&mut self, other: Verdict) {
        self.outcome = self.outcome.max(other.outcome);
        self.checks.extend(other.checks);
        self.alarms.extend(other.alarms);
    }
}

record! {
    /// What a rule set says about itself.
    pub struct RulesDescription {
        /// Plugin name; must match its manifest.
        pub name: String,
        /// Plugin version; must match its manifest.
        pub version: String,
        /// Check codes it can produce.
        pub rule_codes: Vec<String>,
        /// Parameters it reads, with defaults.
        pub parameters: Vec<SettingSpec>,
    }
}
