//! Speakers: one per protocol, turning the simulated device's state and steps into the exact
//! bytes the real device sends, and answering what the daemon asks. Frames come from
//! [`kakou_plugin_sdk::wire`].

use std::collections::BTreeMap;

use kakou_plugin_sdk::wire;

use super::SimError;
use super::scenario::Step;

/// What the simulated device currently shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeviceState {
    /// Weight on the platform, kg.
    pub weight: f64,
    /// The weight is changing.
    pub moving: bool,
    /// Tags in the field (EPC bytes).
    pub tags: Vec<Vec<u8>>,
    /// Card on the reader.
    pub card: Option<Vec<u8>>,
    /// Current fix: lat, lon, speed km/h, course.
    pub fix: Option<(f64, f64, f64, f64)>,
}

/// A protocol's voice.
pub(crate) trait Speaker: Send {
    /// What the device sends on its own every tick (streaming scales, card readers that repeat).
    fn tick(&mut self, _state: &DeviceState) -> Option<Vec<u8>> {
        None
    }
    /// What the device sends when a step happens (a plate read, a seal event).
    fn on_step(&mut self, _step: &Step, _state: &DeviceState) -> Result<Vec<u8>, SimError> {
        Ok(Vec::new())
    }
    /// The device's answer to bytes from the daemon (polls, commands), and a note on what it
    /// understood, for the log.
    fn answer(&mut self, _incoming: &[u8], _state: &DeviceState) -> (Vec<u8>, Option<String>) {
        (Vec::new(), None)
    }
    /// One well-formed frame, for fault steps.
    fn sample(&mut self, state: &DeviceState) -> Vec<u8>;
}

/// Reads protocol options.
struct Options<'a>(&'a BTreeMap<String, toml::Value>);

impl Options<'_> {
    fn int(&self, key: &str, default: i64) -> Result<i64, SimError> {
        match self.0.get(key) {
            None => Ok(default),
            Some(toml::Value::Integer(i)) => Ok(*i),
            Some(other) => Err(SimError::Option {
                key: key.into(),
                message: format!("expected an integer, got {other}"),
            }),
        }
    }
    fn byte(&self, key: &str, default: u8) -> Result<u8, SimError> {
        let v = self.int(key, i64::from(default))?;
        u8::try_from(v).map_err(|_| SimError::Option {
            key: key.into(),
            message: format!("{v} is not 0 to 255"),
        })
    }
    fn text(&self, key: &str, default: &str) -> Result<String, SimError> {
        match self.0.get(key) {
            None => Ok(default.into()),
            Some(toml::Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(SimError::Option {
                key: key.into(),
                message: format!("expected a string, got {other}"),
            }),
        }
    }
}

/// The speaker for `protocol` (a driver's name).
pub(crate) fn speaker(
    protocol: &str,
    options: &BTreeMap<String, toml::Value>,
) -> Result<Box<dyn Speaker>, SimError> {
    let o = Options(options);
    Ok(match protocol {
        "xk3190" => Box::new(Xk3190 {
            decimals: o.byte("decimals", 0)?,
            eq: o.text("format", "tf0")? == "eq",
        }),
        "yaohua-a12" => Box::new(Yaohua {
            decimals: o.byte("decimals", 1)?,
        }),
        "toledo-continuous" => Box::new(Toledo {
            parity: o.text("parity", "even")? == "even",
        }),
        "mt-sics" => Box::new(MtSics {
            pending: Vec::new(),
        }),
        "chafon-uhf18" => Box::new(Chafon {
            address: o.byte("address", 0)?,
            pending: Vec::new(),
        }),
        "impinj-r2000" => Box::new(Impinj {
            address: o.byte("address", 1)?,
            pending: Vec::new(),
        }),
        "sm130" => Box::new(Sm130),
        "rdm6300" => Box::new(Rdm6300),
        "hikvision-anpr" => Box::new(Hikvision),
        "nmea0183" => Box::new(Nmea),
        "container-ocr" => Box::new(ContainerOcr {
            format: o.text("format", "json")?,
            lane: o.text("lane", "L01")?,
        }),
        "jt701" => Box::new(Jt701 { index: 0 }),
        "modbus-barrier" => Box::new(ModbusRelay {
            pending: Vec::new(),
        }),
        "lcus-relay" => Box::new(Lcus {
            pending: Vec::new(),
        }),
        other => return Err(SimError::Protocol(other.into())),
    })
}

fn hex_bytes(text: &str) -> Result<Vec<u8>, SimError> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(&clean).map_err(|e| SimError::Step(format!("{text:?} is not hex: {e}")))
}

pub(crate) fn parse_hex(text: &str) -> Result<Vec<u8>, SimError> {
    hex_bytes(text)
}

struct Xk3190 {
    decimals: u8,
    eq: bool,
}

impl Speaker for Xk3190 {
    fn tick(&mut self, s: &DeviceState) -> Option<Vec<u8>> {
        Some(self.sample(s))
    }
    fn sample(&mut self, s: &DeviceState) -> Vec<u8> {
        if self.eq {
            wire::xk3190::eq_frame(s.weight, self.decimals)
        } else {
            wire::xk3190::tf0_frame(s.weight, self.decimals)
        }
    }
}

struct Yaohua {
    decimals: u8,
}

impl Speaker for Yaohua {
    fn tick(&mut self, s: &DeviceState) -> Option<Vec<u8>> {
        Some(self.sample(s))
    }
    fn sample(&mut self, s: &DeviceState) -> Vec<u8> {
        wire::yaohua::weight_line(s.weight, self.decimals, false)
    }
}

struct Toledo {
    parity: bool,
}

impl Speaker for Toledo {
    fn tick(&mut self, s: &DeviceState) -> Option<Vec<u8>> {
        Some(self.sample(s))
    }
    fn sample(&mut self, s: &DeviceState) -> Vec<u8> {
        let out = wire::toledo::Output {
            weight: s.weight,
            motion: s.moving,
            ..Default::default()
        };
        let frame = wire::toledo::continuous_frame(&out);
        if self.parity {
            wire::toledo::even_parity(&frame)
        } else {
            frame
        }
    }
}

/// Takes complete `\r\n`-ended commands out of a buffer.
fn lines(pending: &mut Vec<u8>, incoming: &[u8]) -> Vec<String> {
    pending.extend_from_slice(incoming);
    let mut out = Vec::new();
    while let Some(i) = pending.windows(2).position(|w| w == b"\r\n") {
        let line: Vec<u8> = pending.drain(..i + 2).collect();
        out.push(String::from_utf8_lossy(&line[..i]).trim().to_owned());
    }
    if pending.len() > 4096 {
        pending.clear();
    }
    out
}

struct MtSics {
    pending: Vec<u8>,
}

impl Speaker for MtSics {
    fn answer(&mut self, incoming: &[u8], s: &DeviceState) -> (Vec<u8>, Option<String>) {
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for cmd in lines(&mut self.pending, incoming) {
            match cmd.as_str() {
                "SI" | "S" => out.extend(wire::mt_sics::weight(s.weight, 0, "kg", !s.moving)),
                _ => out.extend(wire::mt_sics::error(wire::mt_sics::Error::Syntax)),
            }
            seen.push(cmd);
        }
        (
            out,
            (!seen.is_empty()).then(|| format!("asked {}", seen.join(", "))),
        )
    }
    fn sample(&mut self, s: &DeviceState) -> Vec<u8> {
        wire::mt_sics::weight(s.weight, 0, "kg", true)
    }
}

/// Takes complete frames whose first byte (after `sync`) is a length counting the bytes after
/// itself.
fn length_frames(pending: &mut Vec<u8>, incoming: &[u8], sync: &[u8]) -> Vec<Vec<u8>> {
    pending.extend_from_slice(incoming);
    let mut out = Vec::new();
    loop {
        if !sync.is_empty() {
            match pending.windows(sync.len()).position(|w| w == sync) {
                Some(0) => {}
                Some(i) => {
                    pending.drain(..i);
                }
                None => {
                    pending.clear();
                    break;
                }
            }
        }
        let at = sync.len();
        let Some(&len) = pending.get(at) else { break };
        let total = at + 1 + usize::from(len);
        if pending.len() < total {
            break;
        }
        out.push(pending.drain(..total).collect());
    }
    out
}

struct Chafon {
    address: u8,
    pending: Vec<u8>,
}

impl Speaker for Chafon {
    fn answer(&mut self, incoming: &[u8], s: &DeviceState) -> (Vec<u8>, Option<String>) {
        let mut out = Vec::new();
        let mut n = 0;
        for f in length_frames(&mut self.pending, incoming, &[]) {
            if f.get(2) == Some(&0x01) {
                n += 1;
                out.extend(wire::chafon::inventory_replies(self.address, &s.tags).concat());
            }
        }
        (
            out,
            (n > 0).then(|| {
                format!(
                    "{n} inventory request(s), {} tag(s) in the field",
                    s.tags.len()
                )
            }),
        )
    }
    fn sample(&mut self, _s: &DeviceState) -> Vec<u8> {
        wire::chafon::inventory_reply(
            self.address,
            0x01,
            &[[
                0xE2u8, 0x00, 0x00, 0x17, 0x22, 0x11, 0x01, 0x44, 0x18, 0x90, 0xAB, 0xCD,
            ]],
        )
    }
}

struct Impinj {
    address: u8,
    pending: Vec<u8>,
}

impl Speaker for Impinj {
    fn answer(&mut self, incoming: &[u8], s: &DeviceState) -> (Vec<u8>, Option<String>) {
        let mut out = Vec::new();
        let mut n = 0;
        for f in length_frames(&mut self.pending, incoming, &[0xA0]) {
            if f.get(3) == Some(&0x89) {
                n += 1;
                for epc in &s.tags {
                    out.extend(wire::impinj::tag_report(
                        self.address,
                        1,
                        wire::impinj::pc_for_epc(epc.len()),
                        epc,
                        -58,
                    ));
                }
                out.extend(wire::impinj::round_summary(
                    self.address,
                    1,
                    40,
                    s.tags.len() as u32,
                ));
            }
        }
        (
            out,
            (n > 0).then(|| {
                format!(
                    "{n} inventory round(s), {} tag(s) in the field",
                    s.tags.len()
                )
            }),
        )
    }
    fn sample(&mut self, _s: &DeviceState) -> Vec<u8> {
        wire::impinj::tag_report(
            self.address,
            1,
            0x3000,
            &[
                0xE2, 0x00, 0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0, 0x11, 0x22,
            ],
            -60,
        )
    }
}

struct Sm130;

impl Speaker for Sm130 {
    fn on_step(&mut self, step: &Step, s: &DeviceState) -> Result<Vec<u8>, SimError> {
        Ok(match (&step.card, &s.card) {
            (Some(_), Some(uid)) => wire::sm130::tag_response(0x82, 0x02, uid),
            _ => Vec::new(),
        })
    }
    fn sample(&mut self, _s: &DeviceState) -> Vec<u8> {
        wire::sm130::tag_response(0x82, 0x02, &[0x04, 0xA1, 0xB2, 0xC3])
    }
}

struct Rdm6300;

impl Speaker for Rdm6300 {
    fn tick(&mut self, s: &DeviceState) -> Option<Vec<u8>> {
        let uid = s.card.as_ref()?;
        let id: [u8; 5] = uid.as_slice().try_into().ok()?;
        Some(wire::rdm6300::frame(id).to_vec())
    }
    fn sample(&mut self, _s: &DeviceState) -> Vec<u8> {
        wire::rdm6300::frame(wire::rdm6300::card_id(0x62, 0xE3086CED)).to_vec()
    }
}

/// Local time for device timestamps: the simulator's clock in China Standard Time.
fn device_time() -> String {
    let ms = crate::device::now_ms() + 8 * 3_600_000;
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = kakou_plugin_sdk::proto::date::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+08:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

struct Hikvision;

impl Speaker for Hikvision {
    fn on_step(&mut self, step: &Step, _s: &DeviceState) -> Result<Vec<u8>, SimError> {
        let Some(plate) = &step.plate else {
            return Ok(Vec::new());
        };
        let event = wire::hikvision::AnprEvent::new(
            plate,
            step.colour.as_deref().unwrap_or("yellow"),
            step.confidence.unwrap_or(95),
            &device_time(),
        );
        Ok(wire::hikvision::anpr_request(
            &event,
            wire::hikvision::XmlEncoding::Utf8,
        ))
    }
    fn sample(&mut self, _s: &DeviceState) -> Vec<u8> {
        let event = wire::hikvision::AnprEvent::new("粤B12345", "yellow", 90, &device_time());
        wire::hikvision::anpr_request(&event, wire::hikvision::XmlEncoding::Utf8)
    }
}

struct Nmea;

impl Nmea {
    fn sentences(fix: (f64, f64, f64, f64)) -> Vec<u8> {
        let ms = crate::device::now_ms();
        let secs = ms.div_euclid(1000);
        let (y, mo, d) = kakou_plugin_sdk::proto::date::civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400);
        let time = wire::nmea::UtcTime {
            year: y as u16,
            month: mo as u8,
            day: d as u8,
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            second: (rem % 60) as u8,
            centis: None,
        };
        let (lat, lon, kmh, course) = fix;
        let mut out = wire::nmea::rmc(&wire::nmea::Rmc {
            talker: "GP".into(),
            time,
            valid: true,
            lat: Some(lat),
            lon: Some(lon),
            speed_knots: Some(kmh / 1.852),
            course_deg: Some(course),
            magnetic_variation_deg: None,
            minute_decimals: 4,
        });
        out.extend(wire::nmea::gga(&wire::nmea::Gga {
            talker: "GP".into(),
            time,
            lat: Some(lat),
            lon: Some(lon),
            quality: 1,
            satellites: 9,
            hdop: Some(0.9),
            altitude_m: Some(12.0),
            geoid_separation_m: None,
            minute_decimals: 4,
        }));
        out
    }
}

impl Speaker for Nmea {
    fn tick(&mut self, s: &DeviceState) -> Option<Vec<u8>> {
        s.fix.map(Self::sentences)
    }
    fn sample(&mut self, s: &DeviceState) -> Vec<u8> {
        Self::sentences(s.fix.unwrap_or((22.75, 113.6, 0.0, 0.0)))
    }
}

struct ModbusRelay {
    pending: Vec<u8>,
}

impl Speaker for ModbusRelay {
    fn answer(&mut self, incoming: &[u8], _s: &DeviceState) -> (Vec<u8>, Option<String>) {
        self.pending.extend_from_slice(incoming);
        let mut out = Vec::new();
        let mut notes = Vec::new();
        // Write single coil requests are 8 bytes; the relay echoes each one.
        while self.pending.len() >= 8 {
            let req: Vec<u8> = self.pending.drain(..8).collect();
            let on = req[4] == 0xFF;
            notes.push(format!(
                "coil {} {}",
                u16::from_be_bytes([req[2], req[3]]),
                if on { "on" } else { "off" }
            ));
            out.extend(wire::modbus::echo(&req));
        }
        (out, (!notes.is_empty()).then(|| notes.join(", ")))
    }
    fn sample(&mut self, _s: &DeviceState) -> Vec<u8> {
        wire::modbus::echo(&wire::modbus::write_single_coil(1, 0, true))
    }
}

struct Lcus {
    pending: Vec<u8>,
}

impl Speaker for Lcus {
    fn answer(&mut self, incoming: &[u8], _s: &DeviceState) -> (Vec<u8>, Option<String>) {
        self.pending.extend_from_slice(incoming);
        let mut notes = Vec::new();
        while self.pending.len() >= 4 {
            let c: Vec<u8> = self.pending.drain(..4).collect();
            notes.push(format!(
                "relay {} {}",
                c[1],
                if c[2] == 1 { "on" } else { "off" }
            ));
        }
        (Vec::new(), (!notes.is_empty()).then(|| notes.join(", ")))
    }
    fn sample(&mut self, _s: &DeviceState) -> Vec<u8> {
        wire::lcus::status_line(1, true)
    }
}

struct ContainerOcr {
    /// `json`, `text` or `http`.
    format: String,
    lane: String,
}

impl ContainerOcr {
    fn encode(&self, event: &wire::container_ocr::OcrEvent) -> Vec<u8> {
        match self.format.as_str() {
            "text" => wire::container_ocr::text_line(event),
            "http" => wire::container_ocr::http_request(event),
            _ => wire::container_ocr::json_line(event),
        }
    }
}

impl Speaker for ContainerOcr {
    fn on_step(&mut self, step: &Step, _s: &DeviceState) -> Result<Vec<u8>, SimError> {
        use kakou_plugin_sdk::model::ContainerPosition;
        let Some(number) = &step.container else {
            return Ok(Vec::new());
        };
        let position = match step.position.as_deref().unwrap_or("single") {
            "front" => ContainerPosition::Front,
            "rear" => ContainerPosition::Rear,
            "single" => ContainerPosition::Single,
            other => {
                return Err(SimError::Step(format!(
                    "container position {other:?}: expected front, rear or single"
                )));
            }
        };
        let event = wire::container_ocr::OcrEvent {
            lane: self.lane.clone(),
            time: device_time(),
            id: String::new(),
            containers: vec![wire::container_ocr::OcrContainer::new(
                number,
                step.iso.as_deref().unwrap_or(""),
                position,
                step.confidence.unwrap_or(93),
            )],
        };
        Ok(self.encode(&event))
    }
    fn sample(&mut self, _s: &DeviceState) -> Vec<u8> {
        let event = wire::container_ocr::OcrEvent {
            lane: self.lane.clone(),
            time: device_time(),
            id: String::new(),
            containers: vec![wire::container_ocr::OcrContainer::new(
                "CSQU3054383",
                "22G1",
                kakou_plugin_sdk::model::ContainerPosition::Single,
                90,
            )],
        };
        self.encode(&event)
    }
}

struct Jt701 {
    index: u32,
}

impl Jt701 {
    /// A P45 report. Event source 5 stands for "locked" (sites map it with the driver's
    /// `source-states` setting); unlock verification 1 is an authorised unlock.
    fn report(&mut self, id: &str, locked: bool, lat: f64, lon: f64) -> Vec<u8> {
        self.index += 1;
        let secs = crate::device::now_ms().div_euclid(1000);
        let (y, mo, d) = kakou_plugin_sdk::proto::date::civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400);
        wire::jt701::p45(&wire::jt701::P45 {
            id: id.to_owned(),
            year: y as u16,
            month: mo as u8,
            day: d as u8,
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            second: (rem % 60) as u8,
            lat,
            lon,
            decimals: 6,
            valid: true,
            event_source: if locked { 5 } else { 2 },
            unlock_verification: u32::from(!locked),
            rfid: "0000000000".into(),
            index: self.index,
            ..Default::default()
        })
    }
}

impl Speaker for Jt701 {
    fn on_step(&mut self, step: &Step, _s: &DeviceState) -> Result<Vec<u8>, SimError> {
        let Some(seal) = &step.seal else {
            return Ok(Vec::new());
        };
        let locked = match seal.state.as_str() {
            "locked" => true,
            "unlocked" => false,
            other => {
                return Err(SimError::Step(format!(
                    "seal state {other:?}: expected locked or unlocked"
                )));
            }
        };
        Ok(self.report(&seal.id, locked, seal.lat, seal.lon))
    }
    fn sample(&mut self, _s: &DeviceState) -> Vec<u8> {
        self.report("2000000001", true, 22.7589, 113.6021)
    }
}
