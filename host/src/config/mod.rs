//! The site manifest: the site, its bus and store, and every lane with its devices.
//!
//! Owns parsing and validation only. Errors name the file, the line and what was expected; a
//! manifest that fails validation is refused whole, so a running configuration is never
//! replaced by half of a broken one, and every problem found is reported at once
//! ([`ManifestError`]). Besides the manifest it reads only the key files it names and the list
//! of installed driver folders (to catch a misspelt driver name); it does not open devices,
//! load plugins or bind ports ([`checks`] has the checks that span devices).

pub mod checks;
pub mod params;
pub mod region;
mod transport;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kakou_plugin_sdk::model::{CargoKind, Direction, LaneCategory, Setting};
use serde::Deserialize;
use toml::Spanned;

use crate::diag::{SourceError, read_toml};
use crate::plugin::LoadOptions;
pub use crate::plugin::manifest::Sends;
use crate::plugin::signing::PublicKey;
pub use transport::{FlowControl, Parity, SerialSpec, TransportSpec};

/// Why a site manifest was refused: every problem found, each naming the file, line and
/// column, the lane or device, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_problems(.problems))]
pub struct ManifestError {
    /// The problems, in file order (at least one).
    pub problems: Vec<SourceError>,
}

fn render_problems(problems: &[SourceError]) -> String {
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

impl From<SourceError> for ManifestError {
    fn from(e: SourceError) -> Self {
        ManifestError { problems: vec![e] }
    }
}

/// How strictly a missing driver is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `kakou run`: a driver that is not installed may be installed later (the device waits
    /// for it, docs/hot-swap.md), unless its name is close to an installed one: a typo.
    Run,
    /// `kakou check`: every driver must be there now.
    Check,
}

/// A validated site manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteManifest {
    /// Where it was read from.
    pub path: PathBuf,
    /// The site.
    pub site: Site,
    /// The message bus.
    pub bus: BusConfig,
    /// The store.
    pub store: StoreConfig,
    /// The lanes.
    pub lanes: Vec<LaneConfig>,
}

/// Site identity and plugin policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// Site id (bus topics are rooted at `kakou/{id}`).
    pub id: String,
    /// Customs office code.
    pub office: String,
    /// Region rule set name (`manifests/regions/<name>.toml`).
    pub ruleset: Option<String>,
    /// `gateway = true`: the daemon only relays device readings and commands, and its lanes
    /// decide nothing (a site with lanes needs this or a `ruleset`).
    pub gateway: bool,
    /// Folder holding `drivers/<name>` and `rules/<name>` plugin folders.
    pub plugins: PathBuf,
    /// Accept unsealed and unsigned development plugins.
    pub allow_dev_plugins: bool,
    /// Publisher keys whose signed plugins this site loads (`trusted-keys`, files relative to
    /// the manifest, read and checked when the manifest is loaded).
    pub trusted_keys: Vec<PublicKey>,
    /// When a hot-swapped plugin is rolled back to the version it displaced.
    pub rollback: Rollback,
}

/// When a plugin swapped in while the daemon runs is rolled back (docs/hot-swap.md): it is on
/// probation for its first `probation_calls` calls (over every device or lane using it), and
/// `after` faults (traps, timeouts, fuel, memory, oversized results) among them bring back the
/// version it displaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollback {
    /// `rollback-after`: faults on probation that roll a new version back; 0 never does.
    pub after: u32,
    /// `rollback-probation-calls`: how many first calls of a new version are on probation.
    pub probation_calls: u64,
}

impl Default for Rollback {
    fn default() -> Self {
        Rollback {
            after: 3,
            probation_calls: 1000,
        }
    }
}

impl Site {
    /// The plugin policy of this site: its trusted keys, and development plugins (unsealed,
    /// unsigned) only when `allow-dev-plugins = true`.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            allow_unsealed: self.allow_dev_plugins,
            allow_unsigned: self.allow_dev_plugins,
            trusted_keys: self.trusted_keys.clone(),
        }
    }
}

/// Where the bus is.
#[derive(Debug, Clone, PartialEq)]
pub struct BusConfig {
    /// `embedded`, or an `mqtt://` / `mqtts://` URL.
    pub broker: String,
    /// Where the embedded broker listens (port 0: any free port).
    pub listen: std::net::SocketAddr,
    /// User name and password (the embedded broker requires them when set).
    pub credentials: Option<(String, String)>,
    /// CA certificate for `mqtts://`.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key for `mqtts://`.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Whose acknowledgement takes a passage message out of the outbox (`confirm`):
    /// `broker` (default) or `receiver` (the site platform confirms each on
    /// `kakou/{site}/outbox/ack`).
    pub confirm: crate::store::Confirm,
}

/// Where the embedded broker listens unless told otherwise.
pub const DEFAULT_BROKER_LISTEN: &str = "127.0.0.1:1883";

/// Where the store is.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// The redb file.
    pub path: PathBuf,
}

/// One lane.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneConfig {
    /// Lane id.
    pub id: String,
    /// Equipment category.
    pub category: LaneCategory,
    /// Import or export.
    pub direction: Direction,
    /// Cargo type.
    pub cargo: CargoKind,
    /// Station / yard code.
    pub station: String,
    /// Its devices.
    pub devices: Vec<DeviceConfig>,
    /// How the lane assembles and acts on passages.
    pub flow: LaneFlow,
}

/// What a reading is about, as lane settings name it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ReadingKind {
    /// A licence plate.
    Plate,
    /// An e-plate tag.
    Tag,
    /// A container number.
    Container,
    /// A stable gross weight.
    Weight,
    /// A driver's IC card.
    Card,
    /// A document presented.
    Document,
    /// A vehicle presence detector.
    Presence,
}

impl ReadingKind {
    /// Every kind.
    pub const ALL: [ReadingKind; 7] = [
        ReadingKind::Plate,
        ReadingKind::Tag,
        ReadingKind::Container,
        ReadingKind::Weight,
        ReadingKind::Card,
        ReadingKind::Document,
        ReadingKind::Presence,
    ];

    /// The kind's name in manifests and messages.
    pub fn name(self) -> &'static str {
        match self {
            ReadingKind::Plate => "plate",
            ReadingKind::Tag => "tag",
            ReadingKind::Container => "container",
            ReadingKind::Weight => "weight",
            ReadingKind::Card => "card",
            ReadingKind::Document => "document",
            ReadingKind::Presence => "presence",
        }
    }
}

impl std::fmt::Display for ReadingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a lane assembles passages and acts on its decisions.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneFlow {
    /// The device that lifts the barrier (`barrier`); none: the lane only records.
    pub barrier: Option<String>,
    /// Readings that start a passage (`trigger`); empty: any reading of a needed kind.
    pub triggers: Vec<ReadingKind>,
    /// Readings the devices must deliver before deciding (`required`); `None`: by category
    /// (A: plate, tag, container on container lanes, weight, card; B: tag, weight, card;
    /// C: card). What the devices do not deliver, the operator keys in.
    pub required: Option<Vec<ReadingKind>>,
    /// How long a passage collects readings before it is decided with what it has.
    pub window: Duration,
    /// How long the barrier stays open on release.
    pub pulse: Duration,
    /// Weights below this do not start a passage (an empty or settling scale).
    pub trigger_weight_kg: f64,
}

/// Default passage window.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(8);
/// Default barrier pulse.
pub const DEFAULT_PULSE: Duration = Duration::from_secs(5);

/// One device on a lane.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceConfig {
    /// Device id within the lane.
    pub id: String,
    /// Driver plugin name (folder under `plugins/drivers`).
    pub driver: String,
    /// How its bytes arrive.
    pub transport: TransportSpec,
    /// Settings for the driver, over the plugin's defaults.
    pub settings: Vec<Setting>,
    /// When the device sends bytes (`sends`), over what its driver declares; `None`: the
    /// driver's declaration.
    pub sends: Option<Sends>,
    /// A device that sends steadily is offline after this long without a byte; one that
    /// sends on events, when a command or poll gets no byte back within it.
    pub silence_timeout: Duration,
    /// Bytes per second accepted before the excess is dropped (and counted).
    pub max_bytes_per_sec: u32,
    /// The equipment file (parameter library item 7).
    pub equipment: Equipment,
}

/// What is installed: make, model, serial number, install date.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Equipment {
    /// Manufacturer.
    pub make: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Serial number.
    pub serial_number: Option<String>,
    /// Installation date (YYYY-MM-DD).
    pub install_date: Option<String>,
    /// Free text.
    pub notes: Option<String>,
}

/// Default silence before a device is called offline.
pub const DEFAULT_SILENCE: Duration = Duration::from_secs(10);
/// Default byte-rate cap per device: a 115200-baud line runs at most ~11.5 kB/s.
pub const DEFAULT_MAX_BYTES_PER_SEC: u32 = 64 * 1024;

impl SiteManifest {
    /// Reads and validates a site manifest; every problem found refuses it.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let (raw, text): (Raw, String) = read_toml(path)?;
        finish(validate(path, &text, raw, Mode::Run))
    }

    /// Validates manifest text (`path` is used in errors and to resolve relative paths).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ManifestError> {
        finish(validate(
            path,
            text,
            crate::diag::parse_toml(path, text)?,
            Mode::Run,
        ))
    }

    /// What `kakou check` starts from: the manifest as far as it could be read, and every
    /// problem in it, a driver that is not installed included. `Err` when the file cannot be
    /// read as a manifest at all (a syntax error, a missing field).
    pub fn check(path: &Path) -> Result<(Self, Vec<SourceError>), ManifestError> {
        let (raw, text): (Raw, String) = read_toml(path)?;
        Ok(validate(path, &text, raw, Mode::Check)?)
    }

    /// The site's region rule set file: `ruleset` as a path ending in `.toml` (relative to the
    /// manifest), or a name looked up as `regions/<name>.toml` beside the manifest, then in
    /// `../regions/` (the repository's `manifests/regions`).
    pub fn ruleset_path(&self) -> Option<PathBuf> {
        let name = self.site.ruleset.as_deref()?;
        let base = self.path.parent().unwrap_or(Path::new("."));
        if name.ends_with(".toml") {
            return Some(base.join(name));
        }
        let file = format!("{name}.toml");
        let candidates = [
            base.join("regions").join(&file),
            base.join("../regions").join(&file),
        ];
        Some(
            candidates
                .iter()
                .find(|p| p.exists())
                .unwrap_or(&candidates[1])
                .clone(),
        )
    }

    /// A lane by id.
    pub fn lane(&self, id: &str) -> Option<&LaneConfig> {
        self.lanes.iter().find(|l| l.id == id)
    }
}

/// Ids appear in bus topics and file names: letters, digits, `-` and `_`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn finish(
    checked: Result<(SiteManifest, Vec<SourceError>), SourceError>,
) -> Result<SiteManifest, ManifestError> {
    match checked? {
        (manifest, problems) if problems.is_empty() => Ok(manifest),
        (_, problems) => Err(ManifestError { problems }),
    }
}

/// The manifest, and the problems that do not stop it being read (the first one that does is
/// the `Err`).
fn validate(
    path: &Path,
    text: &str,
    raw: Raw,
    mode: Mode,
) -> Result<(SiteManifest, Vec<SourceError>), SourceError> {
    let mut problems: Vec<SourceError> = Vec::new();
    let err = |span: std::ops::Range<usize>, message: String| {
        SourceError::at(path, text, Some(span), message)
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let check_id = |id: &Spanned<String>, what: &str| {
        if valid_id(id.get_ref()) {
            Ok(id.get_ref().clone())
        } else {
            Err(err(
                id.span(),
                format!(
                    "{what} {:?}: expected 1 to 64 letters, digits, `-` or `_`",
                    id.get_ref()
                ),
            ))
        }
    };

    let mut trusted_keys: Vec<PublicKey> = Vec::new();
    for file in &raw.site.trusted_keys {
        let key = PublicKey::load(&base.join(file.get_ref())).map_err(|e| {
            err(
                file.span(),
                format!(
                    "site `trusted-keys`: {:?} is not a usable public key file: {e}",
                    file.get_ref()
                ),
            )
        })?;
        if let Some(same) = trusted_keys.iter().find(|k| k.id() == key.id()) {
            return Err(err(
                file.span(),
                format!(
                    "site `trusted-keys`: {:?} is key {}, which is already listed",
                    file.get_ref(),
                    same.label()
                ),
            ));
        }
        trusted_keys.push(key);
    }
    let site = Site {
        id: check_id(&raw.site.id, "site id")?,
        office: raw.site.office,
        ruleset: raw.site.ruleset.as_ref().map(|r| r.get_ref().clone()),
        gateway: raw.site.gateway.as_ref().is_some_and(|g| *g.get_ref()),
        plugins: base.join(raw.site.plugins.unwrap_or_else(|| "plugins".into())),
        allow_dev_plugins: raw.site.allow_dev_plugins,
        trusted_keys,
        rollback: Rollback {
            after: raw.site.rollback_after.unwrap_or(Rollback::default().after),
            probation_calls: match raw.site.rollback_probation_calls {
                Some(n) if *n.get_ref() == 0 => {
                    return Err(err(
                        n.span(),
                        "site `rollback-probation-calls` = 0: expected at least 1 (to never roll back, set `rollback-after = 0`)".into(),
                    ));
                }
                Some(n) => n.into_inner(),
                None => Rollback::default().probation_calls,
            },
        },
    };
    let listen_span = raw
        .bus
        .as_ref()
        .and_then(|b| b.listen.as_ref())
        .map(Spanned::span);
    let bus = match raw.bus {
        None => BusConfig {
            broker: "embedded".into(),
            listen: DEFAULT_BROKER_LISTEN
                .parse()
                .unwrap_or_else(|_| ([127, 0, 0, 1], 1883).into()),
            credentials: None,
            ca_file: None,
            client_cert: None,
            confirm: crate::store::Confirm::Broker,
        },
        Some(b) => {
            let Some(broker_field) = &b.broker else {
                let (span, message) = match &b.listen {
                    Some(l) => (
                        l.span(),
                        format!(
                            "[bus] sets `listen` = {:?} but no `broker`: `listen` is where the embedded broker listens; write `broker = \"embedded\"` beside it (or `broker = \"mqtt://host:1883\"` without `listen` to join an external broker)",
                            l.get_ref()
                        ),
                    ),
                    None => (
                        0..0,
                        "[bus] without `broker`: write `broker = \"embedded\"` (the daemon's own broker) or `broker = \"mqtt://host:1883\"`, or leave out [bus]".into(),
                    ),
                };
                return Err(err(span, message));
            };
            let listen_text = b
                .listen
                .as_ref()
                .map_or(DEFAULT_BROKER_LISTEN.to_owned(), |l| l.get_ref().clone());
            let listen = listen_text.parse().map_err(|_| {
                err(
                    b.listen.as_ref().map_or(0..0, |l| l.span()),
                    format!("bus `listen` = {listen_text:?}: expected an address such as \"127.0.0.1:1883\""),
                )
            })?;
            let broker = broker_field.get_ref().clone();
            if broker != "embedded"
                && !broker.starts_with("mqtt://")
                && !broker.starts_with("mqtts://")
            {
                return Err(err(
                    broker_field.span(),
                    format!(
                        "bus `broker` = {broker:?}: expected \"embedded\", \"mqtt://host:port\" or \"mqtts://host:port\""
                    ),
                ));
            }
            if broker != "embedded"
                && let Some(l) = &b.listen
            {
                problems.push(err(
                    l.span(),
                    format!(
                        "bus `listen` = {:?} with the external broker {broker:?}: the daemon starts no broker of its own then, so nothing would listen there; remove `listen` (or write `broker = \"embedded\"`)",
                        l.get_ref()
                    ),
                ));
            }
            if broker.starts_with("mqtts://") && b.ca_file.is_none() {
                return Err(err(
                    broker_field.span(),
                    "an `mqtts://` broker needs `ca-file`".into(),
                ));
            }
            let credentials = match (b.username, b.password) {
                (Some(u), Some(p)) => Some((u, p)),
                (None, None) => None,
                _ => {
                    return Err(err(
                        broker_field.span(),
                        "bus `username` and `password` go together".into(),
                    ));
                }
            };
            let client_cert = match (b.client_cert, b.client_key) {
                (Some(c), Some(k)) => Some((base.join(c), base.join(k))),
                (None, None) => None,
                _ => {
                    return Err(err(
                        broker_field.span(),
                        "bus `client-cert` and `client-key` go together".into(),
                    ));
                }
            };
            BusConfig {
                broker,
                listen,
                credentials,
                ca_file: b.ca_file.map(|c| base.join(c)),
                client_cert,
                confirm: b.confirm,
            }
        }
    };
    let store = StoreConfig {
        path: base.join(
            raw.store
                .and_then(|s| s.path)
                .unwrap_or_else(|| "var/kakou.redb".into()),
        ),
    };

    let mut lanes = Vec::new();
    let mut lane_ids = BTreeSet::new();
    let mut located = Vec::new();
    for l in raw.lane {
        let id = check_id(&l.id, "lane id")?;
        if !lane_ids.insert(id.clone()) {
            return Err(err(l.id.span(), format!("lane id {id:?} is used twice")));
        }
        let mut devices = Vec::new();
        let mut device_ids = BTreeSet::new();
        for d in l.devices {
            let dev_id = match check_id(&d.id, "device id") {
                Ok(i) => i,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            if !device_ids.insert(dev_id.clone()) {
                problems.push(err(
                    d.id.span(),
                    format!("device id {dev_id:?} is used twice in lane {id}"),
                ));
                continue;
            }
            let mut transport = match TransportSpec::from_raw(d.transport.get_ref()) {
                Ok(t) => t,
                Err(m) => {
                    problems.push(err(
                        d.transport.span(),
                        format!("device {id}/{dev_id}: transport: {m}"),
                    ));
                    continue;
                }
            };
            // A relative serial path (a simulator's pty link) is relative to the manifest.
            if let TransportSpec::Serial(s) = &mut transport
                && s.path.is_relative()
            {
                s.path = base.join(&s.path);
            }
            let mut settings = Vec::new();
            for (k, v) in d.config {
                match crate::diag::scalar_text(v.get_ref()) {
                    Some(value) => settings.push(Setting { key: k, value }),
                    None => problems.push(err(v.span(), format!("device {id}/{dev_id}: setting `{k}`: expected a string, number or boolean"))),
                }
            }
            located.push(checks::Located {
                lane: id.clone(),
                device: dev_id.clone(),
                driver: d.driver.span(),
                transport: d.transport.span(),
            });
            devices.push(DeviceConfig {
                id: dev_id,
                driver: d.driver.into_inner(),
                transport,
                settings,
                sends: d.sends,
                silence_timeout: d
                    .silence_timeout_ms
                    .map_or(DEFAULT_SILENCE, Duration::from_millis),
                max_bytes_per_sec: d.max_bytes_per_sec.unwrap_or(DEFAULT_MAX_BYTES_PER_SEC),
                equipment: d.equipment,
            });
        }
        let barrier = match l.barrier {
            Some(b) if !devices.iter().any(|d| d.id == *b.get_ref()) => {
                return Err(err(
                    b.span(),
                    format!(
                        "lane {id}: barrier {:?} is not one of the lane's devices",
                        b.get_ref()
                    ),
                ));
            }
            Some(b) => Some(b.into_inner()),
            // A device called `barrier` is the barrier unless the lane says otherwise.
            None => devices
                .iter()
                .find(|d| d.id == "barrier")
                .map(|d| d.id.clone()),
        };
        let flow = LaneFlow {
            barrier,
            triggers: l.trigger,
            required: l.required,
            window: l.window_ms.map_or(DEFAULT_WINDOW, Duration::from_millis),
            pulse: l.pulse_ms.map_or(DEFAULT_PULSE, Duration::from_millis),
            trigger_weight_kg: l.trigger_weight_kg.unwrap_or(500.0),
        };
        lanes.push(LaneConfig {
            id,
            category: l.category,
            direction: l.direction,
            cargo: l.cargo,
            station: l.station.unwrap_or_default(),
            devices,
            flow,
        });
    }
    let manifest = SiteManifest {
        path: path.to_path_buf(),
        site,
        bus,
        store,
        lanes,
    };
    let spans = checks::Spans {
        path,
        text,
        located: &located,
        gateway: raw.site.gateway.as_ref().map(Spanned::span),
        site: raw.site.id.span(),
        listen: listen_span,
    };
    problems.extend(checks::ruleset(&manifest, &spans));
    problems.extend(checks::shared_links(&manifest, &spans));
    problems.extend(checks::drivers(&manifest, &spans, mode == Mode::Check));
    problems.sort_by_key(|p| (p.line, p.column));
    Ok((manifest, problems))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Raw {
    site: RawSite,
    bus: Option<RawBus>,
    store: Option<RawStore>,
    #[serde(default)]
    lane: Vec<RawLane>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSite {
    id: Spanned<String>,
    office: String,
    ruleset: Option<Spanned<String>>,
    gateway: Option<Spanned<bool>>,
    plugins: Option<String>,
    #[serde(default)]
    allow_dev_plugins: bool,
    #[serde(default)]
    trusted_keys: Vec<Spanned<String>>,
    rollback_after: Option<u32>,
    rollback_probation_calls: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawBus {
    broker: Option<Spanned<String>>,
    listen: Option<Spanned<String>>,
    username: Option<String>,
    password: Option<String>,
    ca_file: Option<String>,
    client_cert: Option<String>,
    client_key: Option<String>,
    #[serde(default)]
    confirm: crate::store::Confirm,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStore {
    path: Option<String>,
}

/// Lane settings accept the customary upper-case category letters.
fn category<'de, D: serde::Deserializer<'de>>(d: D) -> Result<LaneCategory, D::Error> {
    let s = String::deserialize(d)?;
    match s.as_str() {
        "A" | "a" => Ok(LaneCategory::A),
        "B" | "b" => Ok(LaneCategory::B),
        "C" | "c" => Ok(LaneCategory::C),
        other => Err(serde::de::Error::custom(format!(
            "lane category {other:?}: expected \"A\", \"B\" or \"C\""
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLane {
    id: Spanned<String>,
    #[serde(deserialize_with = "category")]
    category: LaneCategory,
    direction: Direction,
    #[serde(default)]
    cargo: CargoKind,
    station: Option<String>,
    #[serde(default)]
    devices: Vec<RawDevice>,
    barrier: Option<Spanned<String>>,
    #[serde(default)]
    trigger: Vec<ReadingKind>,
    required: Option<Vec<ReadingKind>>,
    window_ms: Option<u64>,
    pulse_ms: Option<u64>,
    trigger_weight_kg: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDevice {
    id: Spanned<String>,
    driver: Spanned<String>,
    transport: Spanned<transport::RawTransport>,
    #[serde(default)]
    config: std::collections::BTreeMap<String, Spanned<toml::Value>>,
    sends: Option<Sends>,
    silence_timeout_ms: Option<u64>,
    max_bytes_per_sec: Option<u32>,
    #[serde(default)]
    equipment: Equipment,
}

#[cfg(test)]
mod tests;
