//! Sample platform data for the demo site (`manifests/data/sample.jsonl`), from a small
//! deterministic generator: `kakou data sample > manifests/data/sample.jsonl` writes the same
//! bytes every time, and a test keeps the committed file equal to it.
//!
//! The demo gate is station `HP01`, lane `L01`: category A, import, containers (see
//! `manifests/sites/lane-a.toml`). Besides a few hundred ordinary registrations and documents
//! that pass cleanly, the records in [`scenario`] make every gate outcome reachable;
//! `manifests/data/README.md` lists them.

use std::collections::HashSet;

use kakou_plugin_sdk::model::{
    CargoKind, ControlOrder, Direction, Document, DocumentKind, DocumentStatus, Enterprise,
    EnterpriseStatus, Outcome, Station, SubjectKind, TruckDriver, Vehicle,
};
use kakou_plugin_sdk::proto::iso6346;

use super::platform::{PlatformOrder, PlatformParameter, Record};

/// The records behind each gate outcome (all times unix ms, UTC).
pub mod scenario {
    /// 2026-11-27T00:00Z, the day the sample documents are released.
    pub const DEMO_DAY_MS: i64 = 1_795_737_600_000;
    /// 2030-12-31T00:00Z: the transit time limit of every ordinary transit release, far enough
    /// ahead that the demo passes whenever it runs.
    pub const FAR_DEADLINE_MS: i64 = 1_924_905_600_000;
    /// The demo gate's station.
    pub const STATION: &str = "HP01";

    /// Clean pass: the demo truck (the simulators' plate, tag, container and card).
    pub const CLEAN_PLATE: &str = "粤B12345";
    /// Its e-plate tag.
    pub const CLEAN_TAG: &str = "E2000017221101441890ABCD";
    /// Its container, covered by `T520120261127000001` (declared 20 000 kg).
    pub const CLEAN_CONTAINER: &str = "CSQU3054383";
    /// Its driver's card (driver `D0001`).
    pub const CLEAN_CARD: &str = "62E3086CED";

    /// Overweight: vehicle (tare 15 400 kg) carrying a 20 ft box declared at 9 500 kg on
    /// `L520120261127000102` but loaded with 24 000 kg: the scale reads 15 400 + 2 200 +
    /// 24 000 = 41 600 kg gross, 14 500 kg over the declaration.
    pub const OVERWEIGHT_PLATE: &str = "粤BH3306";
    /// The overweight box (22G1).
    pub const OVERWEIGHT_CONTAINER: &str = "MSCU5520188";
    /// Declared cargo.
    pub const OVERWEIGHT_DECLARED_KG: f64 = 9_500.0;
    /// Cargo actually loaded (what a simulated scale should weigh).
    pub const OVERWEIGHT_LOADED_KG: f64 = 24_000.0;

    /// Container under a control order (`CO-20261127-001`, inspect), otherwise clean.
    pub const CONTROLLED_CONTAINER: &str = "OOLU8812348";
    /// Vehicle under a control order (`CO-20261127-002`, refuse).
    pub const CONTROLLED_PLATE: &str = "粤B9F731";
    /// Driver under a control order (`CO-20261127-003`, inspect).
    pub const CONTROLLED_DRIVER: &str = "D9001";
    /// A container whose control order expired on 2026-10-01: clean.
    pub const EXPIRED_ORDER_CONTAINER: &str = "TGHU1188707";
    /// A container whose control order was revoked on 2026-11-26: clean.
    pub const REVOKED_ORDER_CONTAINER: &str = "BMOU4421078";

    /// A card UID that is in no registration: the driver check fails.
    pub const UNREGISTERED_CARD: &str = "0A1B2C3D4E";

    /// Guangdong–Hong Kong two-plate vehicle: its black 粤Z plate …
    pub const TWO_PLATE: &str = "粤Z1234港";
    /// … its Hong Kong plate …
    pub const TWO_PLATE_HK: &str = "KT8848";
    /// … and its container (`T520120261127000107` names the vehicle).
    pub const TWO_PLATE_CONTAINER: &str = "YMLU7177331";

    /// Transit release `T520120261118000103` whose time limit (2026-11-20) has passed.
    pub const EXPIRED_TRANSIT_CONTAINER: &str = "HLXU8703125";
    /// The expired transit release.
    pub const EXPIRED_TRANSIT_DOCUMENT: &str = "T520120261118000103";

    /// Vehicle of the suspended enterprise `E4403099`, with a valid document.
    pub const SUSPENDED_PLATE: &str = "粤B8S620";
    /// The suspended enterprise.
    pub const SUSPENDED_ENTERPRISE: &str = "E4403099";
    /// Its container.
    pub const SUSPENDED_CONTAINER: &str = "CMAU4102767";

    /// Document for another station (SK01, Shekou).
    pub const WRONG_STATION_CONTAINER: &str = "EGLU3341906";
    /// Document for the other direction (export, while L01 imports).
    pub const WRONG_DIRECTION_CONTAINER: &str = "COSU6028454";

    /// A registered vehicle whose registration is not in force.
    pub const INACTIVE_PLATE: &str = "粤B0X442";
    /// Bulk cargo: a local clearance naming the vehicle, no container.
    pub const BULK_PLATE: &str = "粤E7Q218";
    /// No release document at all: manual processing (the demo's third truck).
    pub const UNDOCUMENTED_CONTAINER: &str = "GYOU4047990";
}

use scenario::*;

/// SplitMix64: small, fast, and the same on every platform forever.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn hex(&mut self, digits: usize) -> String {
        (0..digits)
            .map(|_| char::from(b"0123456789ABCDEF"[self.below(16) as usize]))
            .collect()
    }
}

const SERIAL_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
const OWNERS: &[&str] = &[
    "CSQ", "TCN", "MSK", "OOL", "CMA", "EGL", "HLX", "MSC", "COS", "YML", "ONE", "TGH", "BMO",
    "SEG", "TRL", "FCI", "GES", "CAI",
];
const SURNAMES: &[&str] = &[
    "陈", "李", "王", "张", "刘", "黄", "周", "吴", "林", "何", "郭", "马", "罗", "梁", "谢",
];
const GIVEN: &[&str] = &[
    "伟", "军", "浩", "明", "强", "涛", "杰", "磊", "斌", "刚", "辉", "勇", "志强", "建华", "国平",
];
const CITIES: &[&str] = &["深圳", "广州", "东莞", "佛山", "惠州", "中山", "珠海"];
const WORDS: &[&str] = &[
    "华运", "通达", "顺捷", "远航", "港联", "恒信", "安达", "联运", "宏图", "粤海", "新航",
];

fn container(rng: &mut Rng, taken: &mut HashSet<String>) -> String {
    loop {
        let first10 = format!("{}U{:06}", rng.pick(OWNERS), rng.below(1_000_000));
        let Ok(digit) = iso6346::check_digit(&first10) else {
            continue;
        };
        let number = format!("{first10}{digit}");
        if taken.insert(number.clone()) {
            return number;
        }
    }
}

fn plate_text(rng: &mut Rng, taken: &mut HashSet<String>) -> String {
    loop {
        let authority = *rng.pick(&['A', 'B', 'B', 'B', 'E', 'S']);
        let letter_at = rng.below(6) as usize; // 5 = all digits
        let serial: String = (0..5)
            .map(|i| {
                if i == letter_at {
                    char::from(SERIAL_CHARS[10 + rng.below(24) as usize])
                } else {
                    char::from(SERIAL_CHARS[rng.below(10) as usize])
                }
            })
            .collect();
        let plate = format!("粤{authority}{serial}");
        if taken.insert(plate.clone()) {
            return plate;
        }
    }
}

fn vehicle(plate: &str, tag: Option<String>, enterprise: &str, tare: f64) -> Vehicle {
    Vehicle {
        plate: plate.into(),
        tag_epc: tag,
        enterprise: enterprise.into(),
        tare_kg: Some(tare),
        active: true,
        ..Default::default()
    }
}

struct DocSpec<'a> {
    kind: DocumentKind,
    number: String,
    direction: Direction,
    station: &'a str,
    containers: Vec<String>,
    plate: Option<&'a str>,
    declared_kg: f64,
}

fn document(d: DocSpec<'_>) -> Document {
    let transit = d.kind == DocumentKind::TransitRelease;
    Document {
        kind: d.kind,
        number: d.number,
        direction: d.direction,
        cargo: if d.containers.is_empty() {
            CargoKind::Bulk
        } else {
            CargoKind::Container
        },
        station: d.station.into(),
        containers: d.containers,
        plate: d.plate.map(str::to_owned),
        declared_kg: Some(d.declared_kg),
        released_ms: Some(DEMO_DAY_MS - 6 * 3_600_000),
        deadline_ms: transit.then_some(FAR_DEADLINE_MS),
        origin_office: transit.then(|| "5301".to_owned()),
        destination_office: transit.then(|| "5201".to_owned()),
        status: DocumentStatus::Open,
    }
}

fn order(
    id: &str,
    kind: SubjectKind,
    subject: &str,
    reason: &str,
    action: Outcome,
) -> PlatformOrder {
    PlatformOrder {
        order: ControlOrder {
            id: id.into(),
            subject_kind: kind,
            subject: subject.into(),
            reason: reason.into(),
            action,
            expires_ms: None,
        },
        revoked_ms: None,
    }
}

/// Number of ordinary (clean) trucks generated besides the scenario records.
pub const ORDINARY_VEHICLES: usize = 140;

/// The sample records, always the same, in import order (stations and enterprises first).
pub fn sample_records() -> Vec<Record> {
    let mut rng = Rng(0x006b_616b_6f75);
    let mut out = Vec::new();

    // Stations and yards.
    for (code, name, office, active) in [
        (
            "HP01",
            "黄埔港集装箱码头 (Huangpu container terminal)",
            "5201",
            true,
        ),
        (
            "HP02",
            "黄埔保税物流中心 (Huangpu bonded logistics yard)",
            "5201",
            true,
        ),
        ("NS01", "南沙港区 (Nansha port)", "5202", true),
        (
            "SK01",
            "蛇口集装箱码头 (Shekou container terminal)",
            "5301",
            true,
        ),
        ("YT01", "盐田港区 (Yantian port)", "5302", true),
        ("HG01", "皇岗口岸 (Huanggang crossing)", "5303", true),
        ("HP09", "黄埔旧堆场 (closed yard)", "5201", false),
    ] {
        out.push(Record::Station(Station {
            code: code.into(),
            name: name.into(),
            office: office.into(),
            active,
        }));
    }

    // Transport enterprises.
    let mut enterprises = Vec::new();
    let mut names = HashSet::new();
    for i in 1..=24u32 {
        let code = format!("E44{:05}", 3000 + i);
        let name = loop {
            let n = format!("{}{}物流有限公司", rng.pick(CITIES), rng.pick(WORDS));
            if names.insert(n.clone()) {
                break n;
            }
        };
        out.push(Record::Enterprise(Enterprise {
            code: code.clone(),
            name,
            status: EnterpriseStatus::Active,
        }));
        enterprises.push(code);
    }
    for (code, name, status) in [
        (
            SUSPENDED_ENTERPRISE,
            "深圳速达运输有限公司",
            EnterpriseStatus::Suspended,
        ),
        (
            "E4403098",
            "东莞捷通货运有限公司",
            EnterpriseStatus::Revoked,
        ),
        (
            "E8520001",
            "九龍跨境貨運有限公司 (Kowloon Cross-Border Haulage Ltd.)",
            EnterpriseStatus::Active,
        ),
    ] {
        out.push(Record::Enterprise(Enterprise {
            code: code.into(),
            name: name.into(),
            status,
        }));
    }

    // Vehicles: the demo's, the scenarios', then ordinary ones.
    let mut plates_taken: HashSet<String> = HashSet::new();
    let mut containers_taken: HashSet<String> = [
        CLEAN_CONTAINER,
        "TCNU7200794",
        "MSKU1234565",
        OVERWEIGHT_CONTAINER,
        CONTROLLED_CONTAINER,
        EXPIRED_ORDER_CONTAINER,
        REVOKED_ORDER_CONTAINER,
        TWO_PLATE_CONTAINER,
        EXPIRED_TRANSIT_CONTAINER,
        SUSPENDED_CONTAINER,
        WRONG_STATION_CONTAINER,
        WRONG_DIRECTION_CONTAINER,
        UNDOCUMENTED_CONTAINER,
        "ONEU2905611",
        "SEGU6653104",
        "TRLU7784215",
    ]
    .map(str::to_owned)
    .into();
    let mut tags_taken = HashSet::new();
    let mut tag = |rng: &mut Rng| loop {
        let t = format!("E2801160600002{}", rng.hex(10));
        if tags_taken.insert(t.clone()) {
            return t;
        }
    };
    let e0 = enterprises[0].clone();
    let special: Vec<Vehicle> = vec![
        vehicle(CLEAN_PLATE, Some(CLEAN_TAG.into()), &e0, 15_000.0),
        vehicle("粤B6K218", Some(tag(&mut rng)), &e0, 16_200.0),
        vehicle("粤A3D5F7", Some(tag(&mut rng)), &e0, 14_800.0),
        vehicle("粤B77Q02", Some(tag(&mut rng)), &e0, 15_600.0),
        vehicle(
            OVERWEIGHT_PLATE,
            Some(tag(&mut rng)),
            &enterprises[1],
            15_400.0,
        ),
        vehicle("粤B31D86", Some(tag(&mut rng)), &enterprises[2], 15_100.0),
        vehicle(
            CONTROLLED_PLATE,
            Some(tag(&mut rng)),
            &enterprises[3],
            16_000.0,
        ),
        vehicle("粤B2K590", Some(tag(&mut rng)), &enterprises[4], 14_900.0),
        vehicle(
            SUSPENDED_PLATE,
            Some(tag(&mut rng)),
            SUSPENDED_ENTERPRISE,
            15_300.0,
        ),
        vehicle("粤B4M771", Some(tag(&mut rng)), &enterprises[5], 15_800.0),
        vehicle("粤B6N315", Some(tag(&mut rng)), &enterprises[6], 14_700.0),
        Vehicle {
            active: false,
            ..vehicle(
                INACTIVE_PLATE,
                Some(tag(&mut rng)),
                &enterprises[7],
                15_200.0,
            )
        },
        vehicle(BULK_PLATE, Some(tag(&mut rng)), &enterprises[8], 13_800.0),
        Vehicle {
            two_plate: true,
            foreign_plate: Some(TWO_PLATE_HK.into()),
            customs_code: Some("HK0731288".into()),
            ..vehicle(TWO_PLATE, Some(tag(&mut rng)), "E8520001", 14_500.0)
        },
        Vehicle {
            two_plate: true,
            foreign_plate: Some("MK1234".into()),
            customs_code: Some("MO0044017".into()),
            ..vehicle("粤ZA123澳", Some(tag(&mut rng)), "E8520001", 14_200.0)
        },
    ];
    for v in &special {
        plates_taken.insert(v.plate.clone());
    }
    let mut ordinary = Vec::new();
    for i in 0..ORDINARY_VEHICLES {
        let plate = plate_text(&mut rng, &mut plates_taken);
        let enterprise = enterprises[i % enterprises.len()].clone();
        let tare = 13_000.0 + 100.0 * rng.below(46) as f64;
        let t = tag(&mut rng);
        ordinary.push(vehicle(&plate, Some(t), &enterprise, tare));
    }
    for v in special.iter().chain(&ordinary) {
        out.push(Record::Vehicle(v.clone()));
    }

    // Drivers: one per vehicle, the demo card first; the controlled driver.
    let mut cards_taken: HashSet<String> =
        [CLEAN_CARD, UNREGISTERED_CARD].map(str::to_owned).into();
    let mut card = |rng: &mut Rng| loop {
        let c = rng.hex(10);
        if cards_taken.insert(c.clone()) {
            return c;
        }
    };
    let mut drivers = Vec::new();
    for (i, v) in special.iter().chain(&ordinary).enumerate() {
        let name = format!("{}{}", rng.pick(SURNAMES), rng.pick(GIVEN));
        let card_uid = if i == 0 {
            CLEAN_CARD.to_owned()
        } else {
            card(&mut rng)
        };
        let bound = i % 2 == 0;
        drivers.push(TruckDriver {
            id: format!("D{:04}", i + 1),
            name,
            card_uid,
            enterprise: v.enterprise.clone(),
            vehicles: if bound {
                vec![v.plate.clone()]
            } else {
                Vec::new()
            },
            active: true,
        });
    }
    drivers.push(TruckDriver {
        id: CONTROLLED_DRIVER.into(),
        name: "赵平".into(),
        card_uid: card(&mut rng),
        enterprise: enterprises[2].clone(),
        vehicles: vec!["粤B31D86".into()],
        active: true,
    });
    out.extend(drivers.into_iter().map(Record::Driver));

    // Release documents.
    let t_number = |seq: u32| format!("T5201{}{seq:06}", "20261127");
    let mut docs = vec![
        document(DocSpec {
            kind: DocumentKind::TransitRelease,
            number: t_number(1),
            direction: Direction::Import,
            station: STATION,
            containers: vec![CLEAN_CONTAINER.into()],
            plate: None,
            declared_kg: 20_000.0,
        }),
        document(DocSpec {
            kind: DocumentKind::TransitRelease,
            number: t_number(2),
            direction: Direction::Import,
            station: STATION,
            containers: vec!["TCNU7200794".into()],
            plate: None,
            declared_kg: 24_000.0,
        }),
        document(DocSpec {
            kind: DocumentKind::TransitRelease,
            number: t_number(4),
            direction: Direction::Import,
            station: STATION,
            containers: vec!["MSKU1234565".into()],
            plate: None,
            declared_kg: 12_500.0,
        }),
        document(DocSpec {
            kind: DocumentKind::TransitRelease,
            number: t_number(101),
            direction: Direction::Import,
            station: STATION,
            containers: vec![CONTROLLED_CONTAINER.into()],
            plate: Some("粤B31D86"),
            declared_kg: 18_200.0,
        }),
        document(DocSpec {
            kind: DocumentKind::LocalClearance,
            number: "L520120261127000102".into(),
            direction: Direction::Import,
            station: STATION,
            containers: vec![OVERWEIGHT_CONTAINER.into()],
            plate: Some(OVERWEIGHT_PLATE),
            declared_kg: OVERWEIGHT_DECLARED_KG,
        }),
        Document {
            released_ms: Some(DEMO_DAY_MS - 9 * 86_400_000),
            deadline_ms: Some(DEMO_DAY_MS - 7 * 86_400_000),
            ..document(DocSpec {
                kind: DocumentKind::TransitRelease,
                number: EXPIRED_TRANSIT_DOCUMENT.into(),
                direction: Direction::Import,
                station: STATION,
                containers: vec![EXPIRED_TRANSIT_CONTAINER.into()],
                plate: Some("粤B2K590"),
                declared_kg: 16_800.0,
            })
        },
        document(DocSpec {
            kind: DocumentKind::TransitRelease,
            number: t_number(104),
            direction: Direction::Import,
            station: STATION,
            containers: vec![SUSPENDED_CONTAINER.into()],
            plate: Some(SUSPENDED_PLATE),
            declared_kg: 21_000.0,
        }),
        document(DocSpec {
            kind: DocumentKind::TransitRelease,
            number: t_number(105),
            direction: Direction::Import,
            station: "SK01",
            containers: vec![WRONG_STATION_CONTAINER.into()],
            plate: Some("粤B4M771"),
            declared_kg: 19_400.0,
        }),
        document(DocSpec {
            kind: DocumentKind::PortEvacuation,
            number: "E520120261127000106".into(),
            direction: Direction::Export,
            station: STATION,
            containers: vec![WRONG_DIRECTION_CONTAINER.into()],
            plate: Some("粤B6N315"),
            declared_kg: 17_600.0,
        }),
        document(DocSpec {
            kind: DocumentKind::TransitRelease,
            number: t_number(107),
            direction: Direction::Import,
            station: STATION,
            containers: vec![TWO_PLATE_CONTAINER.into()],
            plate: Some(TWO_PLATE),
            declared_kg: 15_900.0,
        }),
        document(DocSpec {
            kind: DocumentKind::TransitRelease,
            number: t_number(108),
            direction: Direction::Import,
            station: STATION,
            containers: vec!["ONEU2905611".into()],
            plate: Some(CONTROLLED_PLATE),
            declared_kg: 20_700.0,
        }),
        document(DocSpec {
            kind: DocumentKind::TransitRelease,
            number: t_number(109),
            direction: Direction::Import,
            station: STATION,
            containers: vec![EXPIRED_ORDER_CONTAINER.into()],
            plate: None,
            declared_kg: 14_300.0,
        }),
        document(DocSpec {
            kind: DocumentKind::TransitRelease,
            number: t_number(110),
            direction: Direction::Import,
            station: STATION,
            containers: vec![REVOKED_ORDER_CONTAINER.into()],
            plate: None,
            declared_kg: 22_100.0,
        }),
        document(DocSpec {
            kind: DocumentKind::TransitRelease,
            number: t_number(111),
            direction: Direction::Import,
            station: STATION,
            containers: vec!["SEGU6653104".into()],
            plate: Some(INACTIVE_PLATE),
            declared_kg: 18_900.0,
        }),
        document(DocSpec {
            kind: DocumentKind::LocalClearance,
            number: "L520120261127000112".into(),
            direction: Direction::Import,
            station: STATION,
            containers: Vec::new(),
            plate: Some(BULK_PLATE),
            declared_kg: 30_000.0,
        }),
    ];
    // Ordinary documents: one per ordinary vehicle, most for this gate, some two-box.
    let kinds = [
        (DocumentKind::TransitRelease, 'T'),
        (DocumentKind::TransitRelease, 'T'),
        (DocumentKind::LocalClearance, 'L'),
        (DocumentKind::PortEvacuation, 'E'),
        (DocumentKind::Bonded, 'B'),
    ];
    let stations = ["HP01", "HP01", "HP01", "HP02", "NS01", "SK01", "YT01"];
    for (i, v) in ordinary.iter().enumerate() {
        let (kind, letter) = *rng.pick(&kinds);
        let station = *rng.pick(&stations);
        let boxes = if rng.below(4) == 0 { 2 } else { 1 };
        let containers = (0..boxes)
            .map(|_| container(&mut rng, &mut containers_taken))
            .collect();
        let direction = if rng.below(5) == 0 {
            Direction::Export
        } else {
            Direction::Import
        };
        docs.push(document(DocSpec {
            kind,
            number: format!("{letter}520120261127{:06}", 1000 + i),
            direction,
            station,
            containers,
            plate: (rng.below(2) == 0).then_some(v.plate.as_str()),
            declared_kg: 8_000.0 + 100.0 * rng.below(181) as f64,
        }));
    }
    // Documents without a vehicle booked yet (any truck may carry them).
    for i in 0..60 {
        let containers = vec![container(&mut rng, &mut containers_taken)];
        docs.push(document(DocSpec {
            kind: DocumentKind::TransitRelease,
            number: format!("T520120261127{:06}", 2000 + i),
            direction: Direction::Import,
            station: STATION,
            containers,
            plate: None,
            declared_kg: 8_000.0 + 100.0 * rng.below(181) as f64,
        }));
    }
    out.extend(docs.into_iter().map(Record::Document));

    // Control orders.
    let mut expired = order(
        "CO-20260915-014",
        SubjectKind::Container,
        EXPIRED_ORDER_CONTAINER,
        "spot check campaign (ended)",
        Outcome::Inspect,
    );
    expired.order.expires_ms = Some(1_790_812_800_000); // 2026-10-01
    let mut revoked = order(
        "CO-20261120-007",
        SubjectKind::Container,
        REVOKED_ORDER_CONTAINER,
        "suspected misdeclaration (cleared)",
        Outcome::Inspect,
    );
    revoked.revoked_ms = Some(DEMO_DAY_MS - 86_400_000);
    for o in [
        order(
            "CO-20261127-001",
            SubjectKind::Container,
            CONTROLLED_CONTAINER,
            "risk alert: suspected undeclared goods",
            Outcome::Inspect,
        ),
        order(
            "CO-20261127-002",
            SubjectKind::Vehicle,
            CONTROLLED_PLATE,
            "vehicle reported in a smuggling case",
            Outcome::Refuse,
        ),
        order(
            "CO-20261127-003",
            SubjectKind::Driver,
            CONTROLLED_DRIVER,
            "driver wanted for questioning",
            Outcome::Inspect,
        ),
        expired,
        revoked,
    ] {
        out.push(Record::ControlOrder(o));
    }

    // Parameters (DOMAIN.md §2.7, parameter library).
    for (name, value) in [
        ("weight.deduction", "vehicle-and-container-tare"),
        ("weight.tolerance-percent", "3"),
        ("weight.tolerance-kg", "200"),
        ("weight.container-tare-20-kg", "2200"),
        ("weight.container-tare-40-kg", "3800"),
        ("transit.time-limit-hours", "48"),
        // What the national rule set reads for its driver checks: an unregistered card goes
        // to inspection, and drivers need not be bound to the vehicle they drive.
        ("check.driver.card", "inspect"),
        ("driver.require-vehicle-binding", "false"),
    ] {
        out.push(Record::Parameter(PlatformParameter {
            name: name.into(),
            value: value.into(),
        }));
    }
    out
}

/// The sample records as JSON lines (what `kakou data sample` prints).
pub fn sample_jsonl() -> String {
    let mut out = String::new();
    for r in sample_records() {
        out.push_str(&r.to_line());
        out.push('\n');
    }
    out
}

/// Lanes of the synthetic site used by the soak run and the benchmark.
pub const SYNTHETIC_LANES: [&str; 4] = ["L01", "L02", "L03", "L04"];

/// Distinct plates among synthetic passages (each plate passes about every 10 000th time).
pub const SYNTHETIC_PLATES: u64 = 10_000;

/// The plate of synthetic passage `n`.
pub fn synthetic_plate(n: u64) -> String {
    let p = n % SYNTHETIC_PLATES;
    let authority = char::from(b"ABES"[(p % 4) as usize]);
    format!("粤{authority}{:05}", p / 4 + 10_000 * (p % 4 / 2))
}

/// The container of synthetic passage `n`: every box passes twice (in, then out).
pub fn synthetic_container(n: u64) -> String {
    let b = n / 2;
    let owner = OWNERS[(b % OWNERS.len() as u64) as usize];
    let first10 = format!("{owner}U{:06}", (b / OWNERS.len() as u64) % 1_000_000);
    let digit = iso6346::check_digit(&first10).unwrap_or(0);
    format!("{first10}{digit}")
}

/// A realistic decided passage (plate, tag, container, weight and card readings, a verdict
/// with checks, the rule set that decided): number `n` of a synthetic stream starting at
/// `base_ms`, one truck every 3 s over four lanes. Used by `kakou store soak` and the store
/// benchmark.
pub fn synthetic_passage(n: u64, base_ms: i64) -> super::PassageRecord {
    use kakou_plugin_sdk::model::{
        Card, CardKind, Check, CheckResult, Container, ContainerPosition, DocumentRef, Lane,
        LaneCategory, Observation, Passage, Plate, PlateColour, Reading, Tag, Verdict, Weight,
    };
    let lane = SYNTHETIC_LANES[(n % SYNTHETIC_LANES.len() as u64) as usize];
    let started = base_ms + n as i64 * 3_000;
    let plate = synthetic_plate(n);
    let number = synthetic_container(n);
    let direction = if n.is_multiple_of(2) {
        Direction::Import
    } else {
        Direction::Export
    };
    let obs = |device: &str, dt: i64, reading: Reading| Observation {
        device: device.into(),
        at_ms: started + dt,
        reading,
        ..Default::default()
    };
    let passage = Passage {
        id: format!("{lane}-{n:010}"),
        site: "bench-site".into(),
        office: "5201".into(),
        lane: Lane {
            id: lane.into(),
            category: LaneCategory::A,
            direction,
            cargo: CargoKind::Container,
            station: if n.is_multiple_of(5) { "HP02" } else { STATION }.into(),
        },
        started_ms: started,
        now_ms: started + 2_400,
        observations: vec![
            obs(
                "rfid",
                100,
                Reading::from(Tag {
                    epc: format!("E2801160600002{:010X}", n % SYNTHETIC_PLATES),
                    antenna: 1,
                    rssi_dbm: Some(-52),
                }),
            ),
            obs(
                "plate-cam",
                300,
                Reading::from(Plate {
                    text: plate,
                    colour: PlateColour::Yellow,
                    confidence: 95,
                    char_confidence: Vec::new(),
                }),
            ),
            obs(
                "box-cam",
                700,
                Reading::from(Container {
                    number: number.clone(),
                    iso_type: Some("22G1".into()),
                    position: ContainerPosition::Single,
                    confidence: 92,
                }),
            ),
            obs(
                "card",
                1_200,
                Reading::from(Card {
                    uid: format!("{:010X}", 0x62_0000_0000 + n % SYNTHETIC_PLATES),
                    kind: CardKind::Em4100,
                }),
            ),
            obs(
                "scale",
                2_000,
                Reading::from(Weight {
                    kg: 30_000.0 + (n % 9_000) as f64,
                    stable: true,
                    ..Default::default()
                }),
            ),
        ],
        attributes: Vec::new(),
    };
    let outcome = if n.is_multiple_of(50) {
        Outcome::Inspect
    } else {
        Outcome::Release
    };
    let verdict = Verdict {
        outcome,
        checks: vec![
            Check::new("weight.tare", CheckResult::Pass, "vehicle tare 15000 kg"),
            Check::new(
                "weight.tolerance",
                if outcome == Outcome::Release {
                    CheckResult::Pass
                } else {
                    CheckResult::Fail
                },
                "measured − deductions against declared",
            )
            .about(number.clone()),
        ],
        alarms: Vec::new(),
    };
    super::PassageRecord {
        passage,
        verdict: Some(verdict),
        outcome: Some(outcome),
        state: super::PassageState::Decided,
        decided_by: vec![super::PluginVersion::new("weight-check", "1.0.0")],
        vehicle: None,
        documents: vec![DocumentRef {
            kind: "transit-release".into(),
            number: format!("T5201{:014}", n / 2),
        }],
        manual_actions: Vec::new(),
        created_ms: started + 2_400,
        updated_ms: started + 2_400,
    }
}
