//! Readings, commands and driver descriptions (WIT interface `types` and `decoding`).

use super::{choice, record};

record! {
    /// A named value: a configuration entry, an attribute, a description item.
    pub struct Setting {
        /// Name.
        pub key: String,
        /// Value as text.
        pub value: String,
    }
}

impl Setting {
    /// A setting from anything printable.
    pub fn new(key: impl Into<String>, value: impl ToString) -> Self {
        Self {
            key: key.into(),
            value: value.to_string(),
        }
    }
}

choice! {
    /// How a weight was taken.
    pub enum WeightKind {
        /// Vehicle and load.
        #[default]
        Gross,
        /// Load only (the indicator took the tare off).
        Net,
        /// Empty vehicle.
        Tare,
    }
}

record! {
    /// A weighbridge reading.
    pub struct Weight {
        /// Kilograms, signed.
        pub kg: f64,
        /// The indicator (or the driver's repeat filter) judges the value settled.
        pub stable: bool,
        /// Gross, net or tare.
        pub kind: WeightKind,
        /// Tare in kilograms when reported with the weight.
        pub tare_kg: Option<f64>,
        /// Over or under range: `kg` is not a measurement.
        pub out_of_range: bool,
    }
}

choice! {
    /// Plate background colour.
    pub enum PlateColour {
        /// Small vehicles.
        Blue,
        /// Large vehicles, trucks.
        Yellow,
        /// New-energy small vehicles.
        Green,
        /// New-energy large vehicles.
        YellowGreen,
        /// Police, military.
        White,
        /// Foreign-related and cross-border (粤Z) vehicles.
        Black,
        /// Not reported.
        #[default]
        Unknown,
    }
}

record! {
    /// A licence plate read by a camera or keyed in.
    pub struct Plate {
        /// Normalised plate text, e.g. "粤B12345".
        pub text: String,
        /// Background colour.
        pub colour: PlateColour,
        /// Whole-plate confidence, 0 to 100.
        pub confidence: u8,
        /// Per-character confidence, 0 to 100 each; empty when not reported.
        pub char_confidence: Vec<u8>,
    }
}

record! {
    /// An RFID tag (electronic licence plate).
    pub struct Tag {
        /// EPC in upper-case hexadecimal.
        pub epc: String,
        /// Antenna port (1-based; 0 when unknown).
        pub antenna: u8,
        /// Received signal strength in dBm.
        pub rssi_dbm: Option<i16>,
    }
}

choice! {
    /// Where on the truck a container was seen.
    pub enum ContainerPosition {
        /// Front slot of a two-container truck.
        Front,
        /// Rear slot.
        Rear,
        /// The only container.
        Single,
        /// Not reported.
        #[default]
        Unknown,
    }
}

record! {
    /// A container number from a camera or an operator.
    pub struct Container {
        /// ISO 6346 number, normalised.
        pub number: String,
        /// ISO size-type code such as "22G1".
        pub iso_type: Option<String>,
        /// Position on the truck.
        pub position: ContainerPosition,
        /// Confidence, 0 to 100.
        pub confidence: u8,
    }
}

choice! {
    /// Card technology.
    pub enum CardKind {
        /// ISO 14443 type A.
        Iso14443a,
        /// 125 kHz EM4100 family.
        Em4100,
        /// Anything else.
        #[default]
        Other,
    }
}

record! {
    /// An IC card presented by the driver.
    pub struct Card {
        /// UID in upper-case hexadecimal.
        pub uid: String,
        /// Technology.
        pub kind: CardKind,
    }
}

record! {
    /// A GPS fix.
    pub struct Position {
        /// Degrees, positive north.
        pub lat: f64,
        /// Degrees, positive east.
        pub lon: f64,
        /// Speed over ground.
        pub speed_kmh: Option<f64>,
        /// Course over ground.
        pub course_deg: Option<f64>,
        /// The receiver reports a valid fix.
        pub valid: bool,
        /// Device time, RFC 3339 UTC.
        pub utc: Option<String>,
    }
}

choice! {
    /// State of an electronic customs seal.
    pub enum SealState {
        /// Closed and intact.
        Locked,
        /// Opened.
        Unlocked,
        /// Forced, cut or otherwise compromised.
        Tampered,
        /// Not reported.
        #[default]
        Unknown,
    }
}

record! {
    /// An electronic customs seal event.
    pub struct Seal {
        /// Seal identifier.
        pub id: String,
        /// Lock state.
        pub state: SealState,
        /// Where the seal was when it reported.
        pub position: Option<Position>,
    }
}

record! {
    /// Vehicle presence from a loop or light curtain.
    pub struct Presence {
        /// A vehicle is there.
        pub present: bool,
        /// Which detector, e.g. "entry", "scale", "exit".
        pub zone: String,
    }
}

choice! {
    /// Severity of a device status report.
    pub enum StatusLevel {
        /// Healthy, or an acknowledgement.
        #[default]
        Ok,
        /// Degraded.
        Warning,
        /// Not working.
        Fault,
    }
}

record! {
    /// A device's account of its health, or an actuator's acknowledgement.
    pub struct DeviceStatus {
        /// Severity.
        pub level: StatusLevel,
        /// Machine-readable code, e.g. "ack", "overload".
        pub code: String,
        /// Human-readable text.
        pub message: String,
    }
}

record! {
    /// A document presented at the gate.
    pub struct DocumentRef {
        /// Kind as the platform names it, e.g. "transit-release".
        pub kind: String,
        /// Document number.
        pub number: String,
    }
}

record! {
    /// Anything a device sends that has no typed case.
    pub struct Raw {
        /// What it is.
        pub kind: String,
        /// The bytes.
        pub data: Vec<u8>,
    }
}

/// What a reading says.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(tag = "type", rename_all = "snake_case")
)]
pub enum ReadingValue {
    /// Weighbridge.
    Weight(Weight),
    /// Plate camera or operator.
    Plate(Plate),
    /// RFID reader.
    Tag(Tag),
    /// Container camera or operator.
    Container(Container),
    /// Card reader.
    Card(Card),
    /// GPS.
    Position(Position),
    /// Electronic seal.
    Seal(Seal),
    /// Loop or light curtain.
    Presence(Presence),
    /// Device health or acknowledgement.
    Status(DeviceStatus),
    /// Presented document.
    Document(DocumentRef),
    /// Untyped.
    Raw(Raw),
}

impl Default for ReadingValue {
    fn default() -> Self {
        ReadingValue::Raw(Raw::default())
    }
}

impl ReadingValue {
    /// The case's name, as used in bus topics and logs ("weight", "plate", …).
    pub fn kind(&self) -> &'static str {
        match self {
            ReadingValue::Weight(_) => "weight",
            ReadingValue::Plate(_) => "plate",
            ReadingValue::Tag(_) => "tag",
            ReadingValue::Container(_) => "container",
            ReadingValue::Card(_) => "card",
            ReadingValue::Position(_) => "position",
            ReadingValue::Seal(_) => "seal",
            ReadingValue::Presence(_) => "presence",
            ReadingValue::Status(_) => "status",
            ReadingValue::Document(_) => "document",
            ReadingValue::Raw(_) => "raw",
        }
    }
}

record! {
    /// One typed reading from a device.
    pub struct Reading {
        /// What was read.
        #[cfg_attr(feature = "serde", serde(flatten))]
        pub value: ReadingValue,
        /// Extra device facts as key/value pairs.
        #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Vec::is_empty"))]
        pub attributes: Vec<Setting>,
    }
}

impl From<ReadingValue> for Reading {
    fn from(value: ReadingValue) -> Self {
        Reading {
            value,
            attributes: Vec::new(),
        }
    }
}

macro_rules! reading_from {
    ($($case:ident($ty:ty)),* $(,)?) => {$(
        impl From<$ty> for Reading {
            fn from(v: $ty) -> Self {
                ReadingValue::$case(v).into()
            }
        }
    )*};
}
reading_from!(
    Weight(Weight),
    Plate(Plate),
    Tag(Tag),
    Container(Container),
    Card(Card),
    Position(Position),
    Seal(Seal),
    Presence(Presence),
    Status(DeviceStatus),
    Document(DocumentRef),
    Raw(Raw),
);

impl Reading {
    /// Adds an attribute.
    pub fn with(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.attributes.push(Setting::new(key, value));
        self
    }
}

record! {
    /// Bytes a driver dropped, and why.
    pub struct Rejected {
        /// Why, e.g. "checksum 1D, frame says 1C".
        pub reason: String,
        /// How many bytes.
        pub bytes: u32,
    }
}

record! {
    /// The result of feeding bytes to a decoder.
    pub struct FeedOutput {
        /// Readings decoded, in order.
        pub readings: Vec<Reading>,
        /// Bytes dropped, in order.
        pub rejected: Vec<Rejected>,
    }
}

record! {
    /// A driver-specific command.
    pub struct CustomCommand {
        /// Command name.
        pub name: String,
        /// Arguments.
        pub args: Vec<Setting>,
    }
}

/// An order to an actuator.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(tag = "type", content = "value", rename_all = "snake_case")
)]
pub enum Command {
    /// Open (barrier up, relay on).
    Open,
    /// Close.
    Close,
    /// Open, then close after this many milliseconds.
    Pulse(u32),
    /// Text for a lane display.
    Display(String),
    /// Driver-specific.
    Custom(CustomCommand),
}

record! {
    /// A setting a plugin understands.
    pub struct SettingSpec {
        /// Name.
        pub key: String,
        /// Value used when the site does not set it.
        pub default_value: Option<String>,
        /// What it does.
        pub doc: String,
    }
}

impl SettingSpec {
    /// A setting with a default.
    pub fn new(key: &str, default_value: Option<&str>, doc: &str) -> Self {
        Self {
            key: key.to_owned(),
            default_value: default_value.map(str::to_owned),
            doc: doc.to_owned(),
        }
    }
}

record! {
    /// What a driver says about itself.
    pub struct DriverDescription {
        /// Plugin name; must match its manifest.
        pub name: String,
        /// Plugin version; must match its manifest.
        pub version: String,
        /// Device classes served ("weighbridge", "rfid", …).
        pub device_classes: Vec<String>,
        /// One line on what it decodes.
        pub summary: String,
        /// How often the host should call `poll`.
        pub poll_interval_ms: Option<u32>,
        /// Settings understood.
        pub settings: Vec<SettingSpec>,
    }
}

choice! {
    /// Log level of a plugin's log line.
    pub enum Level {
        /// Very fine detail.
        Trace,
        /// Detail.
        Debug,
        /// Normal.
        #[default]
        Info,
        /// Something odd.
        Warn,
        /// Something failed.
        Error,
    }
}
