//! A full category-A lane from a site manifest: scale and card reader on pseudo-terminals, an
//! RFID reader and a container OCR portal over TCP, a plate camera over HTTP, GPS over UDP and
//! a barrier relay on a pty; every device played by its simulator with its exact wire format,
//! every byte decoded by its real wasm driver.

#![allow(clippy::unwrap_used)] // test helpers fail loudly, like the tests

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use kakou_host::config::SiteManifest;
use kakou_host::device::{DeviceEvent, DeviceEventKind, DeviceLayer};
use kakou_host::plugin::Runtime;
use kakou_host::sdk::model::{Command, ReadingValue};
use kakou_host::sdk::wire;
use kakou_host::sim::pty::Pty;
use kakou_host::sim::scenario::Scenario;
use tokio::sync::{mpsc, watch};

const DRIVERS: &[&str] = &[
    "xk3190",
    "chafon-uhf18",
    "hikvision-anpr",
    "container-ocr",
    "rdm6300",
    "modbus-barrier",
    "nmea0183",
];

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Plays a scenario file in the background until `stop`.
fn play(path: std::path::PathBuf, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let mut log = |_line: String| {};
        kakou_host::sim::play(&scenario, stop, &mut log)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    })
}

/// What one device read, summarised for comparison.
fn summary(reading: &ReadingValue) -> String {
    match reading {
        ReadingValue::Weight(w) => format!("weight {} stable={}", w.kg, w.stable),
        ReadingValue::Tag(t) => format!("tag {}", t.epc),
        ReadingValue::Plate(p) => format!("plate {} {}", p.text, p.confidence),
        ReadingValue::Container(c) => format!(
            "container {} {}",
            c.number,
            c.iso_type.as_deref().unwrap_or("")
        ),
        ReadingValue::Card(c) => format!("card {}", c.uid),
        ReadingValue::Position(p) => {
            format!("position {:.4} {:.4} valid={}", p.lat, p.lon, p.valid)
        }
        ReadingValue::Status(s) => format!("status {} {}", s.code, s.message),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_category_a_lane_reads_a_truck_and_opens_the_barrier() {
    for d in DRIVERS {
        common::plugin(&format!("plugins/drivers/{d}"));
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (rfid, plate, boxcam, gps) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let site = format!(
        r#"
[site]
id = "e2e"
office = "5201"
plugins = "{plugins}"
allow-dev-plugins = true
gateway = true

[[lane]]
id = "L01"
category = "A"
direction = "import"
cargo = "container"
station = "HP01"
devices = [
  {{ id = "scale",     driver = "xk3190",         transport = {{ serial = "tty-scale" }} }},
  {{ id = "rfid",      driver = "chafon-uhf18",   transport = {{ tcp = "127.0.0.1:{rfid}" }} }},
  {{ id = "plate-cam", driver = "hikvision-anpr", transport = {{ http-listen = "127.0.0.1:{plate}", path = "/anpr" }} }},
  {{ id = "box-cam",   driver = "container-ocr",  transport = {{ tcp-listen = "127.0.0.1:{boxcam}" }} }},
  {{ id = "card",      driver = "rdm6300",        transport = {{ serial = "tty-card" }} }},
  {{ id = "barrier",   driver = "modbus-barrier", transport = {{ serial = "tty-barrier" }} }},
  {{ id = "gps",       driver = "nmea0183",       transport = {{ udp = "127.0.0.1:{gps}" }} }},
]
"#,
        plugins = common::root().join("plugins").display()
    );
    let manifest = SiteManifest::load(&write(dir, "site.toml", &site)).unwrap();

    // The barrier relay: this test plays it by hand, to see the exact bytes.
    let barrier = Pty::open(&dir.join("tty-barrier")).unwrap();
    let scenarios = [
        write(
            dir,
            "scale.toml",
            "protocol = \"xk3190\"\nevery-ms = 50\n[link]\npty = \"tty-scale\"\n[[step]]\nweight = 0\nhold-ms = 300\n[[step]]\nramp = { from = 0, to = 37350, ms = 600 }\n[[step]]\nweight = 37350\nhold-ms = 60000\n",
        ),
        write(
            dir,
            "rfid.toml",
            &format!(
                "protocol = \"chafon-uhf18\"\n[link]\ntcp-listen = \"127.0.0.1:{rfid}\"\n[[step]]\ntags = [\"E2000017221101441890ABCD\"]\nhold-ms = 60000\n"
            ),
        ),
        write(
            dir,
            "plate.toml",
            &format!(
                "protocol = \"hikvision-anpr\"\n[link]\nhttp-post = \"127.0.0.1:{plate}/anpr\"\n[[step]]\nhold-ms = 500\n[[step]]\nplate = \"粤B12345\"\nconfidence = 96\nhold-ms = 60000\n"
            ),
        ),
        write(
            dir,
            "box.toml",
            &format!(
                "protocol = \"container-ocr\"\n[link]\ntcp = \"127.0.0.1:{boxcam}\"\n[[step]]\nhold-ms = 300\n[[step]]\ncontainer = \"CSQU3054383\"\niso = \"22G1\"\nhold-ms = 60000\n"
            ),
        ),
        write(
            dir,
            "card.toml",
            "protocol = \"rdm6300\"\nevery-ms = 200\n[link]\npty = \"tty-card\"\n[[step]]\ncard = \"62E3086CED\"\nhold-ms = 60000\n",
        ),
        write(
            dir,
            "gps.toml",
            &format!(
                "protocol = \"nmea0183\"\nevery-ms = 200\n[link]\nudp = \"127.0.0.1:{gps}\"\n[[step]]\nfix = {{ lat = 22.7589, lon = 113.6021, speed = 5.0 }}\nhold-ms = 60000\n"
            ),
        ),
    ];
    let (stop, stopped) = watch::channel(false);
    // Simulated devices that the daemon opens (ptys, listening sockets) come up first.
    let mut sims = vec![
        play(scenarios[0].clone(), stopped.clone()),
        play(scenarios[1].clone(), stopped.clone()),
        play(scenarios[4].clone(), stopped.clone()),
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;

    let runtime = Runtime::new(None).unwrap();
    let (tx, mut rx) = mpsc::channel::<DeviceEvent>(4096);
    let layer = DeviceLayer::start(&manifest, &runtime, tx).await.unwrap();
    sims.push(play(scenarios[2].clone(), stopped.clone()));
    sims.push(play(scenarios[3].clone(), stopped.clone()));
    sims.push(play(scenarios[5].clone(), stopped.clone()));

    // Everything a category-A lane reads about one truck.
    let wanted: BTreeMap<&str, String> = [
        ("scale", "weight 37350 stable=true".to_owned()),
        ("rfid", "tag E2000017221101441890ABCD".to_owned()),
        ("plate-cam", "plate 粤B12345 96".to_owned()),
        ("box-cam", "container CSQU3054383 22G1".to_owned()),
        ("card", "card 62E3086CED".to_owned()),
        ("gps", "position 22.7589 113.6021 valid=true".to_owned()),
    ]
    .into_iter()
    .collect();
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !wanted
        .iter()
        .all(|(d, w)| seen.get(*d).is_some_and(|v| v.contains(w)))
    {
        let e = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("not every device read the truck in time; seen {seen:#?}"))
            .unwrap();
        if let DeviceEventKind::Reading { reading } = &e.kind {
            seen.entry(e.device.to_string())
                .or_default()
                .push(summary(&reading.value));
        }
    }

    // Told to open, the barrier driver writes exactly a Modbus write-single-coil ON.
    let mut master = barrier.master_clone().unwrap();
    layer
        .command("L01", "barrier", Command::Open)
        .await
        .unwrap();
    let open = read_exactly(&mut master, 8).await;
    assert_eq!(open, [0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x8C, 0x3A]);
    // The relay echoes; the driver reports the acknowledgement.
    master.write_all(&wire::modbus::echo(&open)).unwrap();
    let ack = loop {
        let e = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("an acknowledgement")
            .unwrap();
        if &*e.device == "barrier"
            && let DeviceEventKind::Reading { reading } = &e.kind
        {
            break summary(&reading.value);
        }
    };
    assert_eq!(ack, "status ack coil 0 on");
    // A pulse: ON now, OFF after the pulse, both exact.
    layer
        .command("L01", "barrier", Command::Pulse(200))
        .await
        .unwrap();
    assert_eq!(
        read_exactly(&mut master, 8).await,
        wire::modbus::write_single_coil(1, 0, true)
    );
    assert_eq!(
        read_exactly(&mut master, 8).await,
        wire::modbus::write_single_coil(1, 0, false)
    );

    // The camera's post was stored before it was acknowledged.
    let spool = dir.join("var/spool/L01/plate-cam");
    let stored: Vec<Vec<u8>> = std::fs::read_dir(&spool)
        .unwrap_or_else(|e| panic!("{}: {e}", spool.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(
        stored.iter().any(|r| r.starts_with(b"POST /anpr HTTP/1.1")
            && r.windows(9).any(|w| w == "粤B12345".as_bytes())),
        "no stored ANPR post in {}",
        spool.display()
    );

    for d in ["scale", "rfid", "plate-cam", "box-cam", "card", "gps"] {
        let s = layer.device("L01", d).unwrap().stats();
        assert!(s.readings > 0 && s.faults == 0, "{d}: {s:?}");
    }
    let _ = stop.send(true);
    layer.shutdown().await;
    for s in sims {
        s.await.unwrap();
    }
}

async fn read_exactly(master: &mut std::fs::File, n: usize) -> Vec<u8> {
    let mut m = master.try_clone().unwrap();
    tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; n];
            m.read_exact(&mut buf).map(|_| buf)
        }),
    )
    .await
    .expect("the barrier bytes within 20 s")
    .unwrap()
    .unwrap()
}
