//! Passage assembly: one lane's readings, in arrival order, become passages.
//!
//! A trigger opens a passage; readings are collected until every required kind is there (then
//! the passage is decided at once, on the reading that completed it) or the window closes
//! (then it is decided with what it has, and the rules ask an operator for the rest). Repeated
//! reads are merged into one observation; of conflicting reads the most confident stays in
//! force and the others are kept, marked superseded. Container numbers failing their ISO 6346
//! check digit and malformed plates are kept as superseded reads: a misread is a read failure,
//! not a fact. The moment a passage is handed out, the next reading starts the next truck.
//!
//! Pure and synchronous: time comes in with every call, so the engine, replays and tests drive
//! it alike.

use kakou_plugin_sdk::model::{
    CargoKind, ContainerPosition, LaneCategory, Observation, Passage, Reading, ReadingValue,
    Setting, Source, WeightKind,
};
use kakou_plugin_sdk::proto::{iso6346, plate};

use crate::config::{LaneConfig, ReadingKind};

/// The kind a reading counts as, if it matters to a passage.
pub fn kind_of(value: &ReadingValue) -> Option<ReadingKind> {
    Some(match value {
        ReadingValue::Plate(_) => ReadingKind::Plate,
        ReadingValue::Tag(_) => ReadingKind::Tag,
        ReadingValue::Container(_) => ReadingKind::Container,
        ReadingValue::Weight(_) => ReadingKind::Weight,
        ReadingValue::Card(_) => ReadingKind::Card,
        ReadingValue::Document(_) => ReadingKind::Document,
        ReadingValue::Presence(_) => ReadingKind::Presence,
        _ => return None,
    })
}

/// What the devices must deliver on a lane before its passage is decided.
pub fn required_kinds(lane: &LaneConfig) -> Vec<ReadingKind> {
    if let Some(r) = &lane.flow.required {
        return r.clone();
    }
    let mut kinds = match lane.category {
        LaneCategory::A => vec![ReadingKind::Plate, ReadingKind::Tag, ReadingKind::Weight],
        LaneCategory::B => vec![ReadingKind::Tag, ReadingKind::Weight],
        LaneCategory::C => vec![],
    };
    if lane.category == LaneCategory::A && lane.cargo != CargoKind::Bulk {
        kinds.push(ReadingKind::Container);
    }
    kinds.push(ReadingKind::Card);
    kinds
}

/// A passage handed out for a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Assembled {
    /// The passage (its `now_ms` is the moment it was handed out).
    pub passage: Passage,
    /// Required kinds still missing (the window closed first).
    pub missing: Vec<ReadingKind>,
}

/// One lane's assembly state.
#[derive(Debug)]
pub struct Assembler {
    lane_id: String,
    site: String,
    office: String,
    lane: kakou_plugin_sdk::model::Lane,
    required: Vec<ReadingKind>,
    triggers: Vec<ReadingKind>,
    window_ms: i64,
    trigger_weight_kg: f64,
    open: Option<Passage>,
    deadline_ms: i64,
    /// What the last truck showed: the same reads arriving just after its passage was handed
    /// out (a tag still in the field, a card still on the reader, the truck still on the scale)
    /// belong to it and must not start another passage.
    linger: Vec<ReadingValue>,
    linger_until_ms: i64,
    last_started_ms: i64,
    same_ms: u32,
}

impl Assembler {
    /// Assembly for one lane of a site.
    pub fn new(site: &str, office: &str, lane: &LaneConfig) -> Self {
        Assembler {
            lane_id: lane.id.clone(),
            site: site.to_owned(),
            office: office.to_owned(),
            lane: kakou_plugin_sdk::model::Lane {
                id: lane.id.clone(),
                category: lane.category,
                direction: lane.direction,
                cargo: lane.cargo,
                station: lane.station.clone(),
            },
            required: required_kinds(lane),
            triggers: lane.flow.triggers.clone(),
            window_ms: i64::try_from(lane.flow.window.as_millis()).unwrap_or(i64::MAX),
            trigger_weight_kg: lane.flow.trigger_weight_kg,
            open: None,
            deadline_ms: 0,
            linger: Vec::new(),
            linger_until_ms: 0,
            last_started_ms: 0,
            same_ms: 0,
        }
    }

    /// The kinds this lane waits for.
    pub fn required(&self) -> &[ReadingKind] {
        &self.required
    }

    /// The passage being collected, if any.
    pub fn open(&self) -> Option<&Passage> {
        self.open.as_ref()
    }

    /// Takes a device reading. Returns the passage when this reading completed it.
    pub fn offer(&mut self, device: &str, reading: Reading, at_ms: i64) -> Option<Assembled> {
        let kind = kind_of(&reading.value)?;
        if let ReadingValue::Weight(w) = &reading.value
            && w.kg < self.trigger_weight_kg
        {
            // The scale is empty again: the last truck has left it.
            self.linger
                .retain(|v| !matches!(v, ReadingValue::Weight(_)));
        }
        if self.open.is_none()
            && at_ms <= self.linger_until_ms
            && self.linger.iter().any(|v| same(v, &reading.value))
        {
            return None;
        }
        if let ReadingValue::Weight(w) = &reading.value {
            // The indicator streams all the time: only a settled gross load counts.
            if !w.stable
                || w.out_of_range
                || w.kind != WeightKind::Gross
                || w.kg < self.trigger_weight_kg
            {
                return None;
            }
        }
        if let ReadingValue::Presence(p) = &reading.value
            && !p.present
        {
            return None;
        }
        if self.open.is_none() {
            let triggers = if self.triggers.is_empty() {
                &self.required
            } else {
                &self.triggers
            };
            // On a lane where devices deliver nothing required (category C), any reading
            // starts the passage.
            if !triggers.contains(&kind) && !triggers.is_empty() {
                return None;
            }
            self.start(at_ms);
        }
        let passage = self.open.as_mut()?;
        merge(passage, device, reading, at_ms, Source::Device, None);
        if missing(passage, &self.required).is_empty() {
            return self.hand_out(at_ms);
        }
        None
    }

    /// Closes the window when it is due. Returns the passage, incomplete.
    pub fn tick(&mut self, now_ms: i64) -> Option<Assembled> {
        if self.open.is_some() && now_ms >= self.deadline_ms {
            return self.hand_out(now_ms);
        }
        None
    }

    /// When the open passage's window closes.
    pub fn deadline_ms(&self) -> Option<i64> {
        self.open.as_ref().map(|_| self.deadline_ms)
    }

    fn start(&mut self, at_ms: i64) {
        if at_ms == self.last_started_ms {
            self.same_ms += 1;
        } else {
            self.last_started_ms = at_ms;
            self.same_ms = 0;
        }
        let id = if self.same_ms == 0 {
            format!("{}-{}-{at_ms}", self.site, self.lane_id)
        } else {
            format!("{}-{}-{at_ms}-{}", self.site, self.lane_id, self.same_ms)
        };
        self.open = Some(Passage {
            id,
            site: self.site.clone(),
            office: self.office.clone(),
            lane: self.lane.clone(),
            started_ms: at_ms,
            now_ms: at_ms,
            observations: Vec::new(),
            attributes: Vec::new(),
        });
        self.deadline_ms = at_ms.saturating_add(self.window_ms);
    }

    fn hand_out(&mut self, now_ms: i64) -> Option<Assembled> {
        let mut passage = self.open.take()?;
        passage.now_ms = now_ms;
        self.linger = passage
            .observations
            .iter()
            .map(|o| o.reading.value.clone())
            .collect();
        self.linger_until_ms = now_ms.saturating_add(self.window_ms);
        let missing = missing(&passage, &self.required);
        Some(Assembled { passage, missing })
    }
}

/// Required kinds the passage has no reading of in force.
pub fn missing(passage: &Passage, required: &[ReadingKind]) -> Vec<ReadingKind> {
    required
        .iter()
        .copied()
        .filter(|k| {
            !passage
                .observations
                .iter()
                .any(|o| !o.superseded && kind_of(&o.reading.value) == Some(*k))
        })
        .collect()
}

/// Adds a reading to a passage: merges a repeat, keeps the most confident of conflicting
/// reads in force, marks misreads. Manual and backfill readings always win over device ones.
pub fn merge(
    passage: &mut Passage,
    device: &str,
    mut reading: Reading,
    at_ms: i64,
    source: Source,
    operator: Option<&str>,
) {
    if kind_of(&reading.value).is_none() {
        return;
    }
    let keyed = source != Source::Device;
    let mut misread = None;
    match &mut reading.value {
        ReadingValue::Container(c) => {
            c.number = iso6346::normalize(&c.number);
            if let Err(e) = iso6346::validate(&c.number) {
                misread = Some(e.to_string());
            }
        }
        ReadingValue::Plate(p) => {
            p.text = plate::normalize(&p.text);
            if let Err(e) = plate::parse(&p.text) {
                misread = Some(e.to_string());
            }
        }
        _ => {}
    }
    // A repeat of a reading in force: count it, keep the best confidence.
    if misread.is_none()
        && !keyed
        && let Some(existing) = passage
            .observations
            .iter_mut()
            .find(|o| !o.superseded && same(&o.reading.value, &reading.value))
    {
        bump(existing, &reading);
        return;
    }
    let superseded = if let Some(why) = misread {
        reading.attributes.push(Setting::new("misread", why));
        true
    } else {
        // Conflicting reads of the same thing: one stays in force.
        let mut loses = false;
        for o in passage.observations.iter_mut().filter(|o| !o.superseded) {
            if !conflicts(&o.reading.value, &reading.value) {
                continue;
            }
            let incumbent_keyed = o.source != Source::Device;
            let newer_wins = keyed
                || (!incumbent_keyed && confidence(&reading.value) >= confidence(&o.reading.value));
            if newer_wins {
                o.superseded = true;
            } else {
                loses = true;
            }
        }
        loses
    };
    passage.observations.push(Observation {
        device: device.to_owned(),
        at_ms,
        source,
        operator: operator.map(str::to_owned),
        superseded,
        reading,
    });
}

fn bump(existing: &mut Observation, repeat: &Reading) {
    if let (ReadingValue::Plate(a), ReadingValue::Plate(b)) =
        (&mut existing.reading.value, &repeat.value)
    {
        a.confidence = a.confidence.max(b.confidence);
    }
    if let (ReadingValue::Container(a), ReadingValue::Container(b)) =
        (&mut existing.reading.value, &repeat.value)
    {
        a.confidence = a.confidence.max(b.confidence);
        if a.iso_type.is_none() {
            a.iso_type.clone_from(&b.iso_type);
        }
    }
    let attrs = &mut existing.reading.attributes;
    let reads = attrs
        .iter()
        .find(|s| s.key == "reads")
        .and_then(|s| s.value.parse::<u32>().ok())
        .unwrap_or(1);
    attrs.retain(|s| s.key != "reads");
    attrs.push(Setting::new("reads", reads + 1));
}

/// The same fact read again.
fn same(a: &ReadingValue, b: &ReadingValue) -> bool {
    match (a, b) {
        (ReadingValue::Plate(x), ReadingValue::Plate(y)) => x.text == y.text,
        (ReadingValue::Tag(x), ReadingValue::Tag(y)) => x.epc == y.epc,
        (ReadingValue::Container(x), ReadingValue::Container(y)) => x.number == y.number,
        (ReadingValue::Weight(x), ReadingValue::Weight(y)) => (x.kg - y.kg).abs() < 0.5,
        (ReadingValue::Card(x), ReadingValue::Card(y)) => x.uid == y.uid,
        (ReadingValue::Document(x), ReadingValue::Document(y)) => x.number == y.number,
        (ReadingValue::Presence(x), ReadingValue::Presence(y)) => x.zone == y.zone,
        _ => false,
    }
}

/// Two different reads of something a truck has one of.
fn conflicts(a: &ReadingValue, b: &ReadingValue) -> bool {
    match (a, b) {
        (ReadingValue::Plate(_), ReadingValue::Plate(_))
        | (ReadingValue::Tag(_), ReadingValue::Tag(_))
        | (ReadingValue::Weight(_), ReadingValue::Weight(_))
        | (ReadingValue::Card(_), ReadingValue::Card(_)) => !same(a, b),
        // Two boxes of 20 ft ride front and rear: only reads of one position conflict.
        (ReadingValue::Container(x), ReadingValue::Container(y)) => {
            x.number != y.number
                && (x.position == y.position
                    || x.position == ContainerPosition::Single
                    || y.position == ContainerPosition::Single
                    || x.position == ContainerPosition::Unknown
                    || y.position == ContainerPosition::Unknown)
        }
        _ => false,
    }
}

/// How sure a device was; later settled weights and repeated cards simply win.
fn confidence(v: &ReadingValue) -> u8 {
    match v {
        ReadingValue::Plate(p) => p.confidence,
        ReadingValue::Container(c) => c.confidence,
        _ => u8::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SiteManifest;
    use kakou_plugin_sdk::model::{Card, Container, Plate, Tag, Weight};

    fn lane(category: &str) -> LaneConfig {
        let text = format!(
            "[site]\nid = \"s\"\noffice = \"5201\"\nruleset = \"cn-baseline\"\n[[lane]]\nid = \"L1\"\ncategory = \"{category}\"\ndirection = \"import\"\ncargo = \"container\"\nstation = \"HP01\"\nwindow-ms = 1000\n"
        );
        let m = SiteManifest::parse(std::path::Path::new("site.toml"), &text).unwrap();
        m.lanes[0].clone()
    }

    fn plate(text: &str, confidence: u8) -> Reading {
        Plate {
            text: text.into(),
            confidence,
            ..Default::default()
        }
        .into()
    }

    fn container(number: &str, confidence: u8) -> Reading {
        Container {
            number: number.into(),
            confidence,
            ..Default::default()
        }
        .into()
    }

    fn weight(kg: f64, stable: bool) -> Reading {
        Weight {
            kg,
            stable,
            ..Default::default()
        }
        .into()
    }

    fn tag(epc: &str) -> Reading {
        Tag {
            epc: epc.into(),
            ..Default::default()
        }
        .into()
    }

    fn card(uid: &str) -> Reading {
        Card {
            uid: uid.into(),
            ..Default::default()
        }
        .into()
    }

    #[test]
    fn a_complete_truck_is_decided_on_its_last_reading() {
        let mut a = Assembler::new("s", "5201", &lane("A"));
        assert_eq!(
            a.required(),
            [
                ReadingKind::Plate,
                ReadingKind::Tag,
                ReadingKind::Weight,
                ReadingKind::Container,
                ReadingKind::Card
            ]
        );
        // An empty, settling scale starts nothing.
        assert!(a.offer("scale", weight(20.0, true), 1).is_none());
        assert!(a.open().is_none());
        assert!(a.offer("rfid", tag("E200"), 10).is_none());
        assert!(a.offer("cam", plate("粤B12345", 90), 20).is_none());
        assert!(a.offer("cam", plate("粤B12345", 95), 25).is_none());
        assert!(a.offer("scale", weight(30_000.0, false), 30).is_none());
        assert!(a.offer("scale", weight(35_000.0, true), 40).is_none());
        assert!(a.offer("scale", weight(35_000.0, true), 41).is_none());
        assert!(a.offer("box", container("CSQU3054383", 93), 50).is_none());
        let done = a.offer("card", card("0A1B2C3D"), 60).unwrap();
        assert!(done.missing.is_empty());
        let p = &done.passage;
        assert_eq!(p.id, "s-L1-10");
        assert_eq!((p.started_ms, p.now_ms), (10, 60));
        // Repeats were merged: one plate (best confidence, two reads), one weight.
        assert_eq!(p.observations.len(), 5);
        assert_eq!(p.plate().unwrap().confidence, 95);
        assert_eq!(p.weight().unwrap().kg, 35_000.0);
        // The same truck's tag and card, read again as it leaves, start nothing.
        assert!(a.offer("rfid", tag("E200"), 65).is_none());
        assert!(a.offer("card", card("0A1B2C3D"), 66).is_none());
        assert!(a.offer("scale", weight(35_000.0, true), 67).is_none());
        assert!(a.open().is_none());
        // The next reading is the next truck.
        assert!(a.offer("rfid", tag("E201"), 70).is_none());
        assert_eq!(a.open().unwrap().started_ms, 70);
    }

    #[test]
    fn the_window_closes_on_a_read_failure() {
        let mut a = Assembler::new("s", "5201", &lane("A"));
        a.offer("rfid", tag("E200"), 0);
        a.offer("cam", plate("粤B12345", 90), 10);
        assert!(a.tick(999).is_none());
        let done = a.tick(1000).unwrap();
        assert_eq!(
            done.missing,
            [
                ReadingKind::Weight,
                ReadingKind::Container,
                ReadingKind::Card
            ]
        );
        assert!(a.open().is_none());
    }

    #[test]
    fn conflicting_reads_keep_the_most_confident_and_record_the_rest() {
        let mut p = Passage::default();
        merge(
            &mut p,
            "cam",
            plate("粤B12345", 80),
            0,
            Source::Device,
            None,
        );
        merge(
            &mut p,
            "cam2",
            plate("粤B12346", 95),
            1,
            Source::Device,
            None,
        );
        merge(
            &mut p,
            "cam",
            plate("粤B12347", 60),
            2,
            Source::Device,
            None,
        );
        assert_eq!(p.plate().unwrap().text, "粤B12346");
        assert_eq!(p.observations.len(), 3);
        assert_eq!(
            p.observations.iter().filter(|o| o.superseded).count(),
            2,
            "both weaker reads are kept, superseded"
        );
        // An operator's entry beats any device.
        merge(
            &mut p,
            "op",
            plate("粤B99999", 0),
            3,
            Source::Manual,
            Some("O-17"),
        );
        assert_eq!(p.plate().unwrap().text, "粤B99999");
    }

    #[test]
    fn misreads_are_kept_but_not_in_force() {
        let mut p = Passage::default();
        merge(
            &mut p,
            "box",
            container("CSQU3054384", 99),
            0,
            Source::Device,
            None,
        );
        assert!(p.containers().is_empty());
        assert!(p.observations[0].superseded);
        assert!(
            p.observations[0]
                .reading
                .attributes
                .iter()
                .any(|s| s.key == "misread")
        );
        // Front and rear boxes are two containers, not a conflict.
        let mut p = Passage::default();
        let mut front = container("CSQU3054383", 90);
        let mut rear = container("TCNU7200794", 90);
        if let ReadingValue::Container(c) = &mut front.value {
            c.position = ContainerPosition::Front;
        }
        if let ReadingValue::Container(c) = &mut rear.value {
            c.position = ContainerPosition::Rear;
        }
        merge(&mut p, "box", front, 0, Source::Device, None);
        merge(&mut p, "box", rear, 1, Source::Device, None);
        assert_eq!(p.containers().len(), 2);
    }

    #[test]
    fn category_c_lanes_wait_for_the_card_and_the_operator() {
        let l = lane("C");
        assert_eq!(required_kinds(&l), [ReadingKind::Card]);
        let b = lane("B");
        assert_eq!(
            required_kinds(&b),
            [ReadingKind::Tag, ReadingKind::Weight, ReadingKind::Card]
        );
        let mut a = Assembler::new("s", "5201", &l);
        let done = a.offer("card", card("0A1B2C3D"), 5).unwrap();
        assert!(done.missing.is_empty());
        assert!(done.passage.containers().is_empty());
    }
}
