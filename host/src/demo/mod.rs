//! `kakou demo`: trucks crossing a simulated weighbridge lane, decided by real plugins.
//!
//! Each truck's scale frames are produced in the XK3190 wire format, decoded by the xk3190
//! driver in its sandbox, assembled with a plate and a container into a passage, and judged by
//! the weight-check rule set against sample registrations and release documents. It owns only
//! the demo's scenario and printing; the plugin runtime does the work.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kakou_plugin_sdk::harness::{Dataset, DatasetView};
use kakou_plugin_sdk::model::*;
use kakou_plugin_sdk::wire;

use crate::plugin::{CallError, LoadError, LoadOptions, Runtime, RuntimeError};

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The plugin runtime did not start.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A plugin was refused.
    #[error("{0} (build the plugins first: `cargo xtask plugins`)")]
    Load(#[from] LoadError),
    /// A plugin call failed where the demo cannot go on.
    #[error(transparent)]
    Call(#[from] CallError),
    /// Writing the log failed.
    #[error("cannot write the lane log: {0}")]
    Io(#[from] std::io::Error),
}

/// Demo settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Folder holding `drivers/` and `rules/` plugin folders.
    pub plugins: PathBuf,
    /// How many trucks.
    pub trucks: u32,
    /// Pause between trucks.
    pub pace: Duration,
}

/// One truck of the scenario.
struct Truck {
    plate: &'static str,
    container: &'static str,
    iso_type: &'static str,
    /// Cargo actually loaded, kg.
    cargo_kg: u32,
    note: &'static str,
}

const TRUCKS: &[Truck] = &[
    Truck {
        plate: "粤B12345",
        container: "CSQU3054383",
        iso_type: "22G1",
        cargo_kg: 20_150,
        note: "clean pass",
    },
    Truck {
        plate: "粤B6K218",
        container: "TCNU7200794",
        iso_type: "45G1",
        cargo_kg: 26_900,
        note: "overweight: 2.9 t over declared",
    },
    Truck {
        plate: "粤A3D5F7",
        container: "GYOU4047990",
        iso_type: "22G1",
        cargo_kg: 18_000,
        note: "no release document",
    },
    Truck {
        plate: "粤B77Q02",
        container: "MSKU1234565",
        iso_type: "22G1",
        cargo_kg: 12_480,
        note: "clean pass",
    },
];

fn sample_data() -> Dataset {
    let vehicle = |plate: &str, tare: f64| Vehicle {
        plate: plate.into(),
        enterprise: "E4403001".into(),
        tare_kg: Some(tare),
        active: true,
        ..Default::default()
    };
    let doc = |n: &str, c: &str, kg: f64| Document {
        kind: DocumentKind::TransitRelease,
        number: n.into(),
        containers: vec![c.into()],
        declared_kg: Some(kg),
        ..Default::default()
    };
    Dataset {
        vehicles: vec![
            vehicle("粤B12345", 15_000.0),
            vehicle("粤B6K218", 16_200.0),
            vehicle("粤A3D5F7", 14_800.0),
            vehicle("粤B77Q02", 15_600.0),
        ],
        documents: vec![
            doc("T520120261127000001", "CSQU3054383", 20_000.0),
            doc("T520120261127000002", "TCNU7200794", 24_000.0),
            doc("T520120261127000004", "MSKU1234565", 12_500.0),
        ],
        parameters: vec![Setting::new("weight.tolerance-percent", "3")],
        ..Default::default()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Runs the demo, writing the lane log to `out`.
pub fn run(options: &DemoOptions, out: &mut dyn Write) -> Result<(), DemoError> {
    let runtime = Runtime::new(Runtime::default_cache_dir())?;
    let dev = LoadOptions {
        allow_unsealed: true,
    };
    let scale = runtime.load_driver(&options.plugins.join("drivers/xk3190"), &dev)?;
    let rules = runtime.load_rules(&options.plugins.join("rules/weight-check"), &dev)?;
    let data = Arc::new(sample_data());
    writeln!(
        out,
        "kakou demo: lane L01 (category A, import, container); driver {}, rules {}",
        scale.manifest().id(),
        rules.manifest().id()
    )?;

    let mut decoder = scale.open(&[Setting::new("stable-count", "4")])?;
    let mut tally = [0u32; 4];
    for n in 0..options.trucks {
        let truck = &TRUCKS[n as usize % TRUCKS.len()];
        let vehicle = data.vehicles.iter().find(|v| v.plate == truck.plate);
        let gross = vehicle.and_then(|v| v.tare_kg).unwrap_or(15_000.0) as u32
            + if truck.iso_type.starts_with('4') {
                3_800
            } else {
                2_200
            }
            + truck.cargo_kg;
        let started = now_ms();
        let started_at = Instant::now();
        writeln!(out, "\ntruck {} — {} ({})", n + 1, truck.plate, truck.note)?;

        // The truck drives on: the scale ramps up, then settles.
        let mut wire = Vec::new();
        for step in 1..=5u32 {
            wire.extend(wire::xk3190::tf0_frame(f64::from(gross * step / 5), 0));
        }
        for _ in 0..4 {
            wire.extend(wire::xk3190::tf0_frame(f64::from(gross), 0));
        }
        let mut observations = vec![
            observation(
                "plate-cam",
                Plate {
                    text: truck.plate.into(),
                    colour: PlateColour::Yellow,
                    confidence: 96,
                    ..Default::default()
                }
                .into(),
            ),
            observation(
                "box-cam",
                Container {
                    number: truck.container.into(),
                    iso_type: Some(truck.iso_type.into()),
                    position: ContainerPosition::Single,
                    confidence: 93,
                }
                .into(),
            ),
        ];
        // Serial ports deliver bytes in small pieces.
        for piece in wire.chunks(7) {
            for reading in decoder.feed(piece)?.readings {
                if let ReadingValue::Weight(w) = &reading.value
                    && w.stable
                {
                    writeln!(out, "  scale      {} kg, stable", w.kg)?;
                }
                observations.push(observation("scale", reading));
            }
        }
        writeln!(out, "  plate-cam  {}", truck.plate)?;
        writeln!(out, "  box-cam    {} {}", truck.container, truck.iso_type)?;

        let passage = Passage {
            id: format!("L01-{started}-{:04}", n + 1),
            site: "demo".into(),
            office: "5201".into(),
            lane: Lane {
                id: "L01".into(),
                category: LaneCategory::A,
                direction: Direction::Import,
                cargo: CargoKind::Container,
                station: "HP01".into(),
            },
            started_ms: started,
            now_ms: now_ms(),
            observations,
            attributes: vec![],
        };
        let lookups = Arc::new(DatasetView::new(data.clone(), passage.now_ms));
        let (outcome, lines) = match rules.evaluate(&passage, Some(lookups)) {
            Ok(v) => (
                v.outcome,
                v.checks
                    .iter()
                    .map(|c| format!("{} {:?}: {}", c.code, c.result, c.message))
                    .collect(),
            ),
            Err(e) => (
                Outcome::Manual,
                vec![format!("rules failed, manual processing: {e}")],
            ),
        };
        for l in lines {
            writeln!(out, "  check      {l}")?;
        }
        let barrier = if outcome == Outcome::Release {
            "barrier up"
        } else {
            "barrier stays down"
        };
        writeln!(
            out,
            "  decision   {outcome:?} — {barrier} ({} µs from arrival to decision)",
            started_at.elapsed().as_micros()
        )?;
        tally[outcome as usize] += 1;
        std::thread::sleep(options.pace);
    }
    writeln!(
        out,
        "\n{} trucks: {} released, {} manual, {} to inspection, {} refused",
        options.trucks, tally[0], tally[1], tally[2], tally[3]
    )?;
    Ok(())
}

fn observation(device: &str, reading: Reading) -> Observation {
    Observation {
        device: device.into(),
        at_ms: now_ms(),
        reading,
        ..Default::default()
    }
}

/// The plugins folder next to the working directory, or next to the executable's workspace.
pub fn default_plugins_dir() -> PathBuf {
    let here = Path::new("plugins");
    if here.is_dir() {
        return here.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins")
}
