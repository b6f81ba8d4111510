//! The demo site: three lanes (categories A, B and C) on simulated devices, and the device
//! scenarios that play the trucks of the plan on them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::sim::scenario::{LinkSpec, Ramp, Scenario, Step};

use super::plan::Truck;

/// How long one truck takes on a lane, from arrival to the next truck.
pub const CYCLE_MS: u64 = 6_500;

/// Addresses the demo's devices and broker use (free ports found at start).
#[derive(Debug, Clone)]
pub struct Ports {
    /// Embedded broker.
    pub broker: u16,
    /// L01 RFID reader (the simulated reader listens, the daemon connects).
    pub rfid_a: u16,
    /// L01 plate camera (the daemon listens for HTTP pushes).
    pub plate_a: u16,
    /// L01 container OCR (the daemon listens, the OCR connects).
    pub box_a: u16,
    /// L02 RFID reader.
    pub rfid_b: u16,
}

impl Ports {
    /// Free ports on loopback.
    pub fn free() -> std::io::Result<Self> {
        let take = || -> std::io::Result<std::net::TcpListener> {
            std::net::TcpListener::bind("127.0.0.1:0")
        };
        // Hold them all at once so they are distinct, then release.
        let l = [take()?, take()?, take()?, take()?, take()?];
        let p: Vec<u16> = l
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<Result<_, _>>()?;
        Ok(Ports {
            broker: p[0],
            rfid_a: p[1],
            plate_a: p[2],
            box_a: p[3],
            rfid_b: p[4],
        })
    }
}

/// The site manifest text.
pub fn manifest(dir: &Path, plugins: &Path, ruleset: &Path, ports: &Ports) -> String {
    let tty = |name: &str| dir.join(format!("tty-{name}")).display().to_string();
    format!(
        r#"# The demo site, written by `kakou demo`: three lanes on simulated devices.
[site]
id = "demo"
office = "5201"
ruleset = "{ruleset}"
plugins = "{plugins}"
allow-dev-plugins = true

[bus]
broker = "embedded"
listen = "127.0.0.1:{broker}"

[store]
path = "kakou.redb"

# Category A: every reading comes from a device.
[[lane]]
id = "L01"
category = "A"
direction = "import"
cargo = "container"
station = "HP01"
window-ms = 4000
devices = [
  {{ id = "scale",     driver = "xk3190",         transport = {{ serial = "{scale_a}" }}, config = {{ stable-count = 3 }} }},
  {{ id = "rfid",      driver = "chafon-uhf18",   transport = {{ tcp = "127.0.0.1:{rfid_a}" }} }},
  {{ id = "plate-cam", driver = "hikvision-anpr", transport = {{ http-listen = "127.0.0.1:{plate_a}", path = "/anpr" }} }},
  {{ id = "box-cam",   driver = "container-ocr",  transport = {{ tcp-listen = "127.0.0.1:{box_a}" }} }},
  {{ id = "card",      driver = "rdm6300",        transport = {{ serial = "{card_a}" }} }},
  {{ id = "barrier",   driver = "modbus-barrier", transport = {{ serial = "{barrier_a}" }} }},
]

# Category B: the operator keys in container and plate.
[[lane]]
id = "L02"
category = "B"
direction = "export"
cargo = "container"
station = "HP01"
window-ms = 4000
devices = [
  {{ id = "scale",   driver = "yaohua-a12",   transport = {{ serial = "{scale_b}" }} }},
  {{ id = "rfid",    driver = "impinj-r2000", transport = {{ tcp = "127.0.0.1:{rfid_b}" }} }},
  {{ id = "card",    driver = "rdm6300",      transport = {{ serial = "{card_b}" }} }},
  {{ id = "barrier", driver = "lcus-relay",   transport = {{ serial = "{barrier_b}" }} }},
]

# Category C: a scale and a card reader; the operator keys in the plate.
[[lane]]
id = "L03"
category = "C"
direction = "import"
cargo = "bulk"
station = "HP01"
window-ms = 4000
required = ["weight", "card"]
devices = [
  {{ id = "scale",   driver = "toledo-continuous", transport = {{ serial = "{scale_c}" }} }},
  {{ id = "card",    driver = "rdm6300",           transport = {{ serial = "{card_c}" }} }},
  {{ id = "barrier", driver = "modbus-barrier",    transport = {{ serial = "{barrier_c}" }} }},
]
"#,
        ruleset = ruleset.display(),
        plugins = plugins.display(),
        broker = ports.broker,
        rfid_a = ports.rfid_a,
        plate_a = ports.plate_a,
        box_a = ports.box_a,
        rfid_b = ports.rfid_b,
        scale_a = tty("scale-a"),
        card_a = tty("card-a"),
        barrier_a = tty("barrier-a"),
        scale_b = tty("scale-b"),
        card_b = tty("card-b"),
        barrier_b = tty("barrier-b"),
        scale_c = tty("scale-c"),
        card_c = tty("card-c"),
        barrier_c = tty("barrier-c"),
    )
}

fn hold(ms: u64) -> Step {
    Step {
        hold_ms: Some(ms),
        ..Default::default()
    }
}

fn scenario(protocol: &str, link: LinkSpec, every_ms: u64, steps: Vec<Step>) -> Scenario {
    Scenario {
        path: PathBuf::from(format!("demo:{protocol}")),
        protocol: protocol.to_owned(),
        link,
        options: BTreeMap::new(),
        repeat: 1,
        every: Duration::from_millis(every_ms),
        steps,
    }
}

/// One lane's devices playing its trucks, one after another.
pub fn scenarios(dir: &Path, ports: &Ports, lane: usize, trucks: &[&Truck]) -> Vec<Scenario> {
    let tty = |name: &str| LinkSpec::Pty(dir.join(format!("tty-{name}")));
    let letter = ["a", "b", "c"][lane];
    let (scale_protocol, card_protocol, barrier_protocol) = match lane {
        0 => ("xk3190", "rdm6300", "modbus-barrier"),
        1 => ("yaohua-a12", "rdm6300", "lcus-relay"),
        _ => ("toledo-continuous", "rdm6300", "modbus-barrier"),
    };
    let mut scale = Vec::new();
    let mut card = Vec::new();
    let mut rfid = Vec::new();
    let mut plate = Vec::new();
    let mut boxes = Vec::new();
    // Let the daemon open every link before the first truck.
    let lead = 2_500;
    for s in [&mut scale, &mut card, &mut rfid, &mut plate, &mut boxes] {
        s.push(hold(lead));
    }
    for t in trucks {
        scale.push(Step {
            weight: Some(0.0),
            hold_ms: Some(200),
            ..Default::default()
        });
        scale.push(Step {
            ramp: Some(Ramp {
                from: 0.0,
                to: t.gross_kg,
                ms: 1_000,
            }),
            ..Default::default()
        });
        scale.push(Step {
            weight: Some(t.gross_kg),
            hold_ms: Some(3_300),
            ..Default::default()
        });
        scale.push(Step {
            ramp: Some(Ramp {
                from: t.gross_kg,
                to: 0.0,
                ms: 500,
            }),
            ..Default::default()
        });
        scale.push(Step {
            weight: Some(0.0),
            hold_ms: Some(CYCLE_MS - 5_000),
            ..Default::default()
        });

        card.push(hold(1_400));
        card.push(Step {
            card: Some(t.card.clone()),
            hold_ms: Some(1_000),
            ..Default::default()
        });
        card.push(Step {
            card: Some(String::new()),
            hold_ms: Some(CYCLE_MS - 2_400),
            ..Default::default()
        });

        rfid.push(Step {
            tags: Some(t.tag.iter().cloned().collect()),
            hold_ms: Some(4_500),
            ..Default::default()
        });
        rfid.push(Step {
            tags: Some(Vec::new()),
            hold_ms: Some(CYCLE_MS - 4_500),
            ..Default::default()
        });

        match &t.plate_read {
            Some((text, colour)) => {
                plate.push(hold(100));
                plate.push(Step {
                    plate: Some(text.clone()),
                    colour: Some(colour.clone()),
                    confidence: Some(96),
                    hold_ms: Some(CYCLE_MS - 100),
                    ..Default::default()
                });
            }
            None => plate.push(hold(CYCLE_MS)),
        }
        match &t.container_read {
            Some((number, iso, confidence)) => {
                boxes.push(hold(600));
                boxes.push(Step {
                    container: Some(number.clone()),
                    iso: Some(iso.clone()),
                    position: Some("single".into()),
                    confidence: Some(*confidence),
                    hold_ms: Some(CYCLE_MS - 600),
                    ..Default::default()
                });
            }
            None => boxes.push(hold(CYCLE_MS)),
        }
    }
    // Devices stay on after their lane's last truck, until the demo stops them.
    let idle = 24 * 3_600_000;
    for s in [&mut scale, &mut card, &mut rfid, &mut plate, &mut boxes] {
        s.push(hold(idle));
    }
    let total: u64 = lead + CYCLE_MS * trucks.len() as u64 + idle;
    let mut out = vec![
        scenario(scale_protocol, tty(&format!("scale-{letter}")), 100, scale),
        scenario(card_protocol, tty(&format!("card-{letter}")), 250, card),
        scenario(
            barrier_protocol,
            tty(&format!("barrier-{letter}")),
            100,
            vec![hold(total)],
        ),
    ];
    match lane {
        0 => {
            out.push(scenario(
                "chafon-uhf18",
                LinkSpec::TcpListen(format!("127.0.0.1:{}", ports.rfid_a)),
                100,
                rfid,
            ));
            out.push(scenario(
                "hikvision-anpr",
                LinkSpec::HttpPost(format!("127.0.0.1:{}/anpr", ports.plate_a)),
                100,
                plate,
            ));
            let mut ocr = scenario(
                "container-ocr",
                LinkSpec::TcpConnect(format!("127.0.0.1:{}", ports.box_a)),
                100,
                boxes,
            );
            ocr.options
                .insert("format".into(), toml::Value::String("json".into()));
            ocr.options
                .insert("lane".into(), toml::Value::String("L01".into()));
            out.push(ocr);
        }
        1 => out.push(scenario(
            "impinj-r2000",
            LinkSpec::TcpListen(format!("127.0.0.1:{}", ports.rfid_b)),
            100,
            rfid,
        )),
        _ => {}
    }
    out
}
