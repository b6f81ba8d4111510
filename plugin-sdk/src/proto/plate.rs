//! Mainland Chinese licence plates: normalising what cameras and operators send, and
//! classifying the result (standard, new energy, trailer, coach, police, Hong Kong / Macau
//! cross-border, consulate).
//!
//! A plate is a province character, an issuing-authority letter and a serial: 5 characters
//! on standard plates, 6 on new-energy plates, 4 plus a suffix character (挂 学 警 港 澳 领) on
//! special plates. Letters I and O never appear in the serial.

use std::fmt;
use std::str::FromStr;

/// Province (and municipality / autonomous region) characters that start a plate.
pub const PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";

/// What kind of plate a vehicle carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlateKind {
    /// Province + letter + 5 characters (blue or yellow plates).
    Standard,
    /// 8 characters, with D (electric) or F (other new energy) first in the serial (small
    /// vehicles) or last (large vehicles).
    NewEnergy,
    /// Ends with 挂.
    Trailer,
    /// Driving-school car, ends with 学.
    Coach,
    /// Police, ends with 警.
    Police,
    /// Cross-border with Hong Kong, ends with 港.
    HongKong,
    /// Cross-border with Macau, ends with 澳.
    Macau,
    /// Consulate vehicle, ends with 领.
    Consulate,
}

impl PlateKind {
    /// A stable snake_case label (`"new_energy"`), for logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PlateKind::Standard => "standard",
            PlateKind::NewEnergy => "new_energy",
            PlateKind::Trailer => "trailer",
            PlateKind::Coach => "coach",
            PlateKind::Police => "police",
            PlateKind::HongKong => "hong_kong",
            PlateKind::Macau => "macau",
            PlateKind::Consulate => "consulate",
        }
    }

    /// The kind a suffix character marks, if it is one.
    fn from_suffix(c: char) -> Option<Self> {
        Some(match c {
            '挂' => PlateKind::Trailer,
            '学' => PlateKind::Coach,
            '警' => PlateKind::Police,
            '港' => PlateKind::HongKong,
            '澳' => PlateKind::Macau,
            '领' => PlateKind::Consulate,
            _ => return None,
        })
    }
}

impl fmt::Display for PlateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a plate was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlateError {
    /// Nothing left after normalisation.
    Empty,
    /// Not 7 characters (8 for new-energy plates) after normalisation.
    WrongLength {
        /// Length found, in characters.
        len: usize,
    },
    /// The first character is not a province character.
    BadProvince(char),
    /// The second character is not an issuing-authority letter A–Z.
    BadAuthority(char),
    /// I or O in the serial, where they are never issued.
    ForbiddenLetter(char),
    /// A serial character that is not a letter or digit.
    BadCharacter(char),
    /// 8 characters, but without D/F where new-energy plates carry it.
    BadNewEnergy,
}

impl fmt::Display for PlateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlateError::Empty => f.write_str("plate is empty"),
            PlateError::WrongLength { len } => {
                write!(
                    f,
                    "plate has {len} characters, expected 7 (8 for new energy)"
                )
            }
            PlateError::BadProvince(c) => write!(f, "{c:?} is not a province character"),
            PlateError::BadAuthority(c) => {
                write!(f, "issuing authority must be a letter A-Z, found {c:?}")
            }
            PlateError::ForbiddenLetter(c) => {
                write!(f, "letter {c:?} is not used in plate serials")
            }
            PlateError::BadCharacter(c) => {
                write!(f, "{c:?} is not allowed in a plate serial")
            }
            PlateError::BadNewEnergy => f.write_str(
                "8-character plate without D/F first (small) or last (large) in the serial",
            ),
        }
    }
}

impl std::error::Error for PlateError {}

/// A parsed plate: normalised text and its kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Plate {
    /// Normalised text, e.g. `粤B12345`.
    pub text: String,
    /// Plate kind.
    pub kind: PlateKind,
}

impl Plate {
    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The province character (`粤`).
    pub fn province(&self) -> Option<char> {
        self.text.chars().next()
    }

    /// The issuing-authority letter (`B` in 粤B12345).
    pub fn authority(&self) -> Option<char> {
        self.text.chars().nth(1)
    }

    /// The serial: the characters after the authority letter, without a suffix character.
    pub fn serial(&self) -> &str {
        let start = self
            .text
            .char_indices()
            .nth(2)
            .map_or(self.text.len(), |(i, _)| i);
        let serial = &self.text[start..];
        match serial.chars().last() {
            Some(c) if PlateKind::from_suffix(c).is_some() => {
                &serial[..serial.len() - c.len_utf8()]
            }
            _ => serial,
        }
    }

    /// Whether this is the black 粤Z plate of a Guangdong–Hong Kong/Macau two-plate vehicle
    /// (粤Z + 4 characters + 港 or 澳). Entries and exits of these must balance per vehicle.
    pub fn is_two_plate(&self) -> bool {
        matches!(self.kind, PlateKind::HongKong | PlateKind::Macau)
            && self.province() == Some('粤')
            && self.authority() == Some('Z')
    }
}

impl fmt::Display for Plate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Plate {
    type Err = PlateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// Trims, converts full-width ASCII to half-width (`Ａ` → `A`, `１` → `1`), upper-cases
/// ASCII letters and removes whitespace and separators (`·` `•` `・` `-` `.`).
pub fn normalize(raw: &str) -> String {
    raw.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .filter(|c| !c.is_whitespace() && !matches!(c, '·' | '•' | '・' | '‧' | '∙' | '-' | '.'))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Whether `c` starts mainland plates (see [`PROVINCES`]).
pub fn is_province(c: char) -> bool {
    PROVINCES.contains(c)
}

fn check_serial(serial: &[char]) -> Result<(), PlateError> {
    for &c in serial {
        if c == 'I' || c == 'O' {
            return Err(PlateError::ForbiddenLetter(c));
        }
        if !(c.is_ascii_uppercase() || c.is_ascii_digit()) {
            return Err(PlateError::BadCharacter(c));
        }
    }
    Ok(())
}

fn is_new_energy(serial: &[char]) -> bool {
    let digits = |s: &[char]| s.iter().all(char::is_ascii_digit);
    match serial {
        [first, _, rest @ ..] if matches!(first, 'D' | 'F') && digits(rest) => true,
        [head @ .., last] if matches!(last, 'D' | 'F') && digits(head) => true,
        _ => false,
    }
}

/// Normalises `raw` and classifies it.
///
/// ```
/// use kakou_plugin_sdk::proto::plate::{parse, PlateKind};
/// let p = parse("粤Z·1234港").expect("valid");
/// assert_eq!((p.text.as_str(), p.kind, p.is_two_plate()), ("粤Z1234港", PlateKind::HongKong, true));
/// ```
pub fn parse(raw: &str) -> Result<Plate, PlateError> {
    let text = normalize(raw);
    let chars: Vec<char> = text.chars().collect();
    let len = chars.len();
    if len == 0 {
        return Err(PlateError::Empty);
    }
    if !(7..=8).contains(&len) {
        return Err(PlateError::WrongLength { len });
    }
    if !is_province(chars[0]) {
        return Err(PlateError::BadProvince(chars[0]));
    }
    if !chars[1].is_ascii_uppercase() {
        return Err(PlateError::BadAuthority(chars[1]));
    }
    let kind = if let Some(kind) = PlateKind::from_suffix(chars[len - 1]) {
        if len != 7 {
            return Err(PlateError::WrongLength { len });
        }
        check_serial(&chars[2..6])?;
        kind
    } else {
        check_serial(&chars[2..])?;
        if len == 7 {
            PlateKind::Standard
        } else if is_new_energy(&chars[2..]) {
            PlateKind::NewEnergy
        } else {
            return Err(PlateError::BadNewEnergy);
        }
    };
    Ok(Plate { text, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(raw: &str) -> Result<PlateKind, PlateError> {
        parse(raw).map(|p| p.kind)
    }

    #[test]
    fn provinces() {
        assert_eq!(PROVINCES.chars().count(), 31);
        for c in PROVINCES.chars() {
            assert!(is_province(c));
            assert_eq!(kind(&format!("{c}A12345")), Ok(PlateKind::Standard), "{c}");
        }
        assert!(!is_province('台'));
        assert!(!is_province('A'));
    }

    #[test]
    fn standard_plates() {
        let p = parse("粤B12345").expect("valid");
        assert_eq!(p.text, "粤B12345");
        assert_eq!(p.kind, PlateKind::Standard);
        assert_eq!(p.province(), Some('粤'));
        assert_eq!(p.authority(), Some('B'));
        assert_eq!(p.serial(), "12345");
        assert!(!p.is_two_plate());
        assert_eq!(kind("京AF0236"), Ok(PlateKind::Standard));
        assert_eq!(kind("沪C8K2M1"), Ok(PlateKind::Standard));
        // O as the issuing authority (police vehicles in some provinces) is fine.
        assert_eq!(kind("粤O12345"), Ok(PlateKind::Standard));
    }

    #[test]
    fn new_energy_plates() {
        let p = parse("沪AD12345").expect("valid");
        assert_eq!(p.kind, PlateKind::NewEnergy);
        assert_eq!(p.serial(), "D12345");
        assert_eq!(kind("粤BF12345"), Ok(PlateKind::NewEnergy));
        assert_eq!(kind("京ADA1234"), Ok(PlateKind::NewEnergy));
        assert_eq!(kind("粤B12345D"), Ok(PlateKind::NewEnergy));
        assert_eq!(kind("苏E12345F"), Ok(PlateKind::NewEnergy));
        assert_eq!(kind("粤BA12345"), Err(PlateError::BadNewEnergy));
        assert_eq!(kind("粤BD1234A"), Err(PlateError::BadNewEnergy));
        assert_eq!(kind("粤B1234AD"), Err(PlateError::BadNewEnergy));
    }

    #[test]
    fn suffix_plates() {
        let p = parse("粤Z1234港").expect("valid");
        assert_eq!(p.kind, PlateKind::HongKong);
        assert_eq!(p.serial(), "1234");
        assert!(p.is_two_plate());
        let p = parse("粤ZA123澳").expect("valid");
        assert_eq!(p.kind, PlateKind::Macau);
        assert!(p.is_two_plate());
        assert_eq!(kind("京A1234学"), Ok(PlateKind::Coach));
        assert_eq!(kind("粤B1234挂"), Ok(PlateKind::Trailer));
        assert_eq!(kind("京A0001警"), Ok(PlateKind::Police));
        assert_eq!(kind("粤A1234领"), Ok(PlateKind::Consulate));
        assert_eq!(parse("粤B1234挂").map(|p| p.is_two_plate()), Ok(false));
        // 港 on a plate that is not 粤Z: classified, but not a two-plate vehicle.
        assert_eq!(parse("粤B1234港").map(|p| p.is_two_plate()), Ok(false));
        assert_eq!(kind("粤Z12345港"), Err(PlateError::WrongLength { len: 8 }));
        assert_eq!(kind("粤Z1I34港"), Err(PlateError::ForbiddenLetter('I')));
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalize("粤Ｂ１２３４５"), "粤B12345");
        assert_eq!(normalize("  粤b·12345 "), "粤B12345");
        assert_eq!(normalize("京A-1234学"), "京A1234学");
        assert_eq!(normalize("沪A•D1234５"), "沪AD12345");
        assert_eq!(normalize("粤Ｚ　１２３４港"), "粤Z1234港");
        assert_eq!(normalize("粤B．12345"), "粤B12345");
        assert_eq!(
            parse("粤ｂ・１２３４５").map(|p| p.text),
            Ok("粤B12345".to_string())
        );
        assert_eq!(kind("粤Ｚ　１２３４港"), Ok(PlateKind::HongKong));
    }

    #[test]
    fn errors() {
        assert_eq!(parse(""), Err(PlateError::Empty));
        assert_eq!(parse(" · "), Err(PlateError::Empty));
        assert_eq!(parse("粤B1234"), Err(PlateError::WrongLength { len: 6 }));
        assert_eq!(
            parse("粤B123456789"),
            Err(PlateError::WrongLength { len: 11 })
        );
        assert_eq!(parse("台A12345"), Err(PlateError::BadProvince('台')));
        assert_eq!(parse("AB12345"), Err(PlateError::BadProvince('A')));
        assert_eq!(parse("粤112345"), Err(PlateError::BadAuthority('1')));
        assert_eq!(parse("粤粤12345"), Err(PlateError::BadAuthority('粤')));
        assert_eq!(parse("粤B12I45"), Err(PlateError::ForbiddenLetter('I')));
        assert_eq!(parse("粤BO1234"), Err(PlateError::ForbiddenLetter('O')));
        assert_eq!(parse("粤b1o234"), Err(PlateError::ForbiddenLetter('O')));
        assert_eq!(parse("沪AD1234I"), Err(PlateError::ForbiddenLetter('I')));
        assert_eq!(parse("粤B12#45"), Err(PlateError::BadCharacter('#')));
        assert_eq!(parse("粤B12京45"), Err(PlateError::BadCharacter('京')));
    }

    #[test]
    fn display_and_from_str() {
        let p: Plate = "粤B 12345".parse().expect("valid");
        assert_eq!(p.to_string(), "粤B12345");
        assert_eq!(p.as_str(), "粤B12345");
        assert_eq!(PlateKind::NewEnergy.to_string(), "new_energy");
        assert_eq!(PlateKind::HongKong.as_str(), "hong_kong");
        assert_eq!(
            PlateError::BadProvince('台').to_string(),
            "'台' is not a province character"
        );
        assert_eq!(
            PlateError::ForbiddenLetter('O').to_string(),
            "letter 'O' is not used in plate serials"
        );
        let e: Box<dyn std::error::Error> = Box::new(PlateError::WrongLength { len: 3 });
        assert!(e.to_string().contains("3 characters"));
    }
}
