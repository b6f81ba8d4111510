//! Scenario files: which device to play, over which link, and what it does step by step.
//!
//! ```toml
//! protocol = "xk3190"                  # the wire format (a driver's name)
//! repeat = 1                           # plays of the steps (0: until stopped)
//! every-ms = 100                       # how often a streaming device sends its state
//! [link]
//! pty = "var/sim/scale"                # or tcp-listen / tcp / udp / http-post = "host:port/path"
//! [options]                            # protocol options (decimals, address, …)
//! decimals = 0
//!
//! [[step]]
//! ramp = { from = 0, to = 37350, ms = 3000 }
//! [[step]]
//! weight = 37350
//! hold-ms = 2000
//! [[step]]
//! garbage = 32                         # faults: garbage, corrupt, truncate, silence-ms, disconnect-ms
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::diag::{SourceError, read_toml};

/// A scenario, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Where it was read from.
    pub path: PathBuf,
    /// Wire format.
    pub protocol: String,
    /// How the device is reached.
    pub link: LinkSpec,
    /// Protocol options.
    pub options: BTreeMap<String, toml::Value>,
    /// Plays of the steps; 0 = until stopped.
    pub repeat: u32,
    /// Streaming interval.
    pub every: Duration,
    /// The steps.
    pub steps: Vec<Step>,
}

/// How the simulated device is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkSpec {
    /// A pseudo-terminal whose slave side is linked at this path.
    Pty(PathBuf),
    /// The device listens; the daemon connects.
    TcpListen(String),
    /// The device connects to the daemon.
    TcpConnect(String),
    /// Datagrams to the daemon.
    Udp(String),
    /// HTTP POSTs to the daemon: `host:port/path`.
    HttpPost(String),
}

/// One thing the device does.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Step {
    /// Set the weight on the scale.
    pub weight: Option<f64>,
    /// Move the weight from one value to another over a time.
    pub ramp: Option<Ramp>,
    /// A plate read.
    pub plate: Option<String>,
    /// A container read.
    pub container: Option<String>,
    /// ISO size-type code for `container`.
    pub iso: Option<String>,
    /// Position of `container` on the truck: front, rear, single.
    pub position: Option<String>,
    /// Confidence for `plate` / `container`.
    pub confidence: Option<u8>,
    /// Plate colour for `plate`.
    pub colour: Option<String>,
    /// Tags in the field from now on (EPCs in hex); empty: none.
    pub tags: Option<Vec<String>>,
    /// A card presented (UID hex); empty string: card removed.
    pub card: Option<String>,
    /// A GPS fix from now on.
    pub fix: Option<Fix>,
    /// An e-seal report.
    pub seal: Option<SealStep>,
    /// Bytes of random garbage.
    pub garbage: Option<usize>,
    /// Frames with a corrupted checksum.
    pub corrupt: Option<u32>,
    /// Frames cut short.
    pub truncate: Option<u32>,
    /// Raw bytes, in hex.
    pub raw: Option<String>,
    /// Say nothing for this long.
    pub silence_ms: Option<u64>,
    /// Drop the link for this long.
    pub disconnect_ms: Option<u64>,
    /// Keep the state for this long after the step.
    pub hold_ms: Option<u64>,
}

/// A weight ramp.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ramp {
    /// Start, kg.
    pub from: f64,
    /// End, kg.
    pub to: f64,
    /// Duration.
    pub ms: u64,
}

/// A GPS fix.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fix {
    /// Degrees north.
    pub lat: f64,
    /// Degrees east.
    pub lon: f64,
    /// km/h.
    #[serde(default)]
    pub speed: f64,
    /// Degrees.
    #[serde(default)]
    pub course: f64,
}

/// An e-seal report.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealStep {
    /// Seal id.
    pub id: String,
    /// `locked` or `unlocked`.
    pub state: String,
    /// Where.
    #[serde(default)]
    pub lat: f64,
    /// Where.
    #[serde(default)]
    pub lon: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Raw {
    protocol: String,
    link: RawLink,
    #[serde(default)]
    options: BTreeMap<String, toml::Value>,
    #[serde(default = "one")]
    repeat: u32,
    every_ms: Option<u64>,
    #[serde(default)]
    step: Vec<Step>,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLink {
    pty: Option<PathBuf>,
    tcp_listen: Option<String>,
    tcp: Option<String>,
    udp: Option<String>,
    http_post: Option<String>,
}

impl Scenario {
    /// Reads a scenario file.
    pub fn load(path: &Path) -> Result<Self, SourceError> {
        let (raw, text): (Raw, String) = read_toml(path)?;
        let err = |m: String| SourceError::at(path, &text, None, m);
        let base = path.parent().unwrap_or(Path::new("."));
        let l = raw.link;
        let mut links = Vec::new();
        if let Some(p) = l.pty {
            links.push(LinkSpec::Pty(base.join(p)));
        }
        if let Some(a) = l.tcp_listen {
            links.push(LinkSpec::TcpListen(a));
        }
        if let Some(a) = l.tcp {
            links.push(LinkSpec::TcpConnect(a));
        }
        if let Some(a) = l.udp {
            links.push(LinkSpec::Udp(a));
        }
        if let Some(a) = l.http_post {
            links.push(LinkSpec::HttpPost(a));
        }
        if links.len() != 1 {
            return Err(err(
                "[link]: expected exactly one of `pty`, `tcp-listen`, `tcp`, `udp`, `http-post`"
                    .into(),
            ));
        }
        Ok(Scenario {
            path: path.to_path_buf(),
            protocol: raw.protocol,
            link: links.remove(0),
            options: raw.options,
            repeat: raw.repeat,
            every: Duration::from_millis(raw.every_ms.unwrap_or(100).max(1)),
            steps: raw.step,
        })
    }
}
