//! ISO 6346 container numbers: normalisation, format checks and the check digit.
//!
//! A container number is a 3-letter owner code, a category letter (U, J or Z), a 6-digit
//! serial and a check digit, e.g. `CSQU3054383`. Container OCR misreads often, so every
//! number that reaches a decision should go through [`validate`].

use std::fmt;
use std::str::FromStr;

/// Why a container number was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerError {
    /// Not 11 characters (10 for [`check_digit`]) after normalisation.
    WrongLength {
        /// Length found, in characters.
        len: usize,
    },
    /// The owner code is not three letters A–Z.
    BadOwnerCode,
    /// The category letter is not U, J or Z.
    BadCategory(char),
    /// The serial is not six digits.
    BadSerial,
    /// The check digit does not match.
    CheckDigitMismatch {
        /// The check digit computed from the first ten characters.
        expected: u8,
        /// The character found in the check-digit position.
        found: char,
    },
}

impl fmt::Display for ContainerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContainerError::WrongLength { len } => {
                write!(f, "container number has {len} characters, expected 11")
            }
            ContainerError::BadOwnerCode => f.write_str("owner code must be three letters A-Z"),
            ContainerError::BadCategory(c) => {
                write!(f, "category letter must be U, J or Z, found {c:?}")
            }
            ContainerError::BadSerial => f.write_str("serial number must be six digits"),
            ContainerError::CheckDigitMismatch { expected, found } => {
                write!(
                    f,
                    "check digit mismatch: expected {expected}, found {found:?}"
                )
            }
        }
    }
}

impl std::error::Error for ContainerError {}

/// A validated, normalised container number such as `CSQU3054383`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerNumber(String);

impl ContainerNumber {
    /// The 11-character normalised number.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Owner code (3 letters, e.g. `CSQ`).
    pub fn owner(&self) -> &str {
        &self.0[..3]
    }

    /// Category letter: `U` freight container, `J` detachable equipment, `Z` trailer/chassis.
    pub fn category(&self) -> char {
        char::from(self.0.as_bytes()[3])
    }

    /// The 6-digit serial number.
    pub fn serial(&self) -> &str {
        &self.0[4..10]
    }

    /// The check digit (0–9).
    pub fn check_digit(&self) -> u8 {
        self.0.as_bytes()[10] - b'0'
    }
}

impl fmt::Display for ContainerNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ContainerNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for ContainerNumber {
    type Err = ContainerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        validate(s)
    }
}

/// Trims, upper-cases and removes whitespace and dashes (`" csqu 305438-3 "` → `CSQU3054383`).
pub fn normalize(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Letter values start at A=10 and skip multiples of 11.
fn letter_value(c: u8) -> u32 {
    let mut v = u32::from(c - b'A') + 10;
    // 11, 22 and 33 are skipped: every value at or past one of them moves up by one.
    for skipped in [11, 22, 33] {
        if v >= skipped {
            v += 1;
        }
    }
    v
}

/// Checks owner code, category and serial (the first ten characters) and returns their
/// check digit.
fn compute(prefix: &[char]) -> Result<u8, ContainerError> {
    if !prefix[..3].iter().all(char::is_ascii_uppercase) {
        return Err(ContainerError::BadOwnerCode);
    }
    if !matches!(prefix[3], 'U' | 'J' | 'Z') {
        return Err(ContainerError::BadCategory(prefix[3]));
    }
    if !prefix[4..10].iter().all(char::is_ascii_digit) {
        return Err(ContainerError::BadSerial);
    }
    let sum: u32 = prefix
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let value = c.to_digit(10).unwrap_or_else(|| letter_value(c as u8));
            value << i
        })
        .sum();
    Ok((sum % 11 % 10) as u8)
}

/// The normalised characters, if there are exactly `want` of them.
fn chars(raw: &str, want: usize) -> Result<Vec<char>, ContainerError> {
    let chars: Vec<char> = normalize(raw).chars().collect();
    if chars.len() == want {
        Ok(chars)
    } else {
        Err(ContainerError::WrongLength { len: chars.len() })
    }
}

/// The check digit of an owner code + category + serial (`"CSQU305438"` → 3). The input is
/// normalised first.
pub fn check_digit(first10: &str) -> Result<u8, ContainerError> {
    compute(&chars(first10, 10)?)
}

/// Normalises `number` and checks format and check digit.
///
/// ```
/// use kakou_plugin_sdk::proto::iso6346::validate;
/// let n = validate("CSQU 305438-3").expect("valid");
/// assert_eq!((n.owner(), n.category(), n.serial(), n.check_digit()), ("CSQ", 'U', "305438", 3));
/// ```
pub fn validate(number: &str) -> Result<ContainerNumber, ContainerError> {
    let chars = chars(number, 11)?;
    let expected = compute(&chars[..10])?;
    let found = chars[10];
    if found.to_digit(10) != Some(u32::from(expected)) {
        return Err(ContainerError::CheckDigitMismatch { expected, found });
    }
    Ok(ContainerNumber(chars.into_iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_values_skip_multiples_of_eleven() {
        let expected = [
            10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 34,
            35, 36, 37, 38,
        ];
        for (i, want) in expected.iter().enumerate() {
            assert_eq!(
                letter_value(b'A' + i as u8),
                *want,
                "{}",
                (b'A' + i as u8) as char
            );
        }
    }

    #[test]
    fn domain_examples() {
        assert_eq!(check_digit("CSQU305438"), Ok(3));
        assert_eq!(check_digit("TCNU720079"), Ok(4));
        assert_eq!(check_digit("GYOU404799"), Ok(0));
        for n in ["CSQU3054383", "TCNU7200794", "GYOU4047990"] {
            let c = validate(n).expect(n);
            assert_eq!(c.as_str(), n);
            assert_eq!(c.to_string(), n);
        }
    }

    #[test]
    fn ten_maps_to_zero() {
        // Find a serial whose raw remainder is 10 and check it maps to 0.
        let serial = (0..1_000_000u32)
            .map(|s| format!("CSQU{s:06}"))
            .find(|p| {
                let sum: u32 = p
                    .bytes()
                    .enumerate()
                    .map(|(i, c)| {
                        let v = if c.is_ascii_digit() {
                            u32::from(c - b'0')
                        } else {
                            letter_value(c)
                        };
                        v << i
                    })
                    .sum();
                sum % 11 == 10
            })
            .expect("some serial has remainder 10");
        assert_eq!(check_digit(&serial), Ok(0));
        assert!(validate(&format!("{serial}0")).is_ok());
    }

    #[test]
    fn parts() {
        let c = validate("CSQU3054383").expect("valid");
        assert_eq!(c.owner(), "CSQ");
        assert_eq!(c.category(), 'U');
        assert_eq!(c.serial(), "305438");
        assert_eq!(c.check_digit(), 3);
        assert_eq!(c.as_ref(), "CSQU3054383");
        assert_eq!(
            "TCNU7200794".parse::<ContainerNumber>(),
            validate("TCNU7200794")
        );
    }

    #[test]
    fn normalisation() {
        for raw in [
            "CSQU 305438-3",
            " csqu3054383\n",
            "CSQU-305438-3",
            "c s q u 3 0 5 4 3 8 3",
            "CSQU\t305438 3",
        ] {
            assert_eq!(
                validate(raw).map(|c| c.to_string()),
                Ok("CSQU3054383".into()),
                "{raw:?}"
            );
        }
        assert_eq!(normalize(" ab-c d "), "ABCD");
    }

    #[test]
    fn wrong_check_digit_reports_expected() {
        assert_eq!(
            validate("CSQU3054384"),
            Err(ContainerError::CheckDigitMismatch {
                expected: 3,
                found: '4'
            })
        );
        assert_eq!(
            validate("TCNU7200790"),
            Err(ContainerError::CheckDigitMismatch {
                expected: 4,
                found: '0'
            })
        );
        assert_eq!(
            validate("GYOU404799X"),
            Err(ContainerError::CheckDigitMismatch {
                expected: 0,
                found: 'X'
            })
        );
        assert_eq!(
            validate("GYOU404799口"),
            Err(ContainerError::CheckDigitMismatch {
                expected: 0,
                found: '口'
            })
        );
        // A transposed serial is caught.
        assert!(matches!(
            validate("CSQU3045383"),
            Err(ContainerError::CheckDigitMismatch { .. })
        ));
    }

    #[test]
    fn format_errors() {
        assert_eq!(validate(""), Err(ContainerError::WrongLength { len: 0 }));
        assert_eq!(
            validate("CSQU305438"),
            Err(ContainerError::WrongLength { len: 10 })
        );
        assert_eq!(
            validate("CSQU30543833"),
            Err(ContainerError::WrongLength { len: 12 })
        );
        assert_eq!(
            check_digit("CSQU3054383"),
            Err(ContainerError::WrongLength { len: 11 })
        );
        assert_eq!(validate("C5QU3054383"), Err(ContainerError::BadOwnerCode));
        assert_eq!(validate("集SQU3054383"), Err(ContainerError::BadOwnerCode));
        assert_eq!(
            validate("CSQX3054383"),
            Err(ContainerError::BadCategory('X'))
        );
        assert_eq!(
            validate("CSQ03054383"),
            Err(ContainerError::BadCategory('0'))
        );
        assert_eq!(validate("CSQU30543O3"), Err(ContainerError::BadSerial));
        assert_eq!(validate("CSQU３05438 3"), Err(ContainerError::BadSerial));
        assert_eq!(
            check_digit("CSQA305438"),
            Err(ContainerError::BadCategory('A'))
        );
    }

    #[test]
    fn j_and_z_categories() {
        let j = format!("CSQJ305438{}", check_digit("CSQJ305438").expect("ok"));
        assert_eq!(validate(&j).map(|c| c.category()), Ok('J'));
        let z = format!("CSQZ305438{}", check_digit("CSQZ305438").expect("ok"));
        assert_eq!(validate(&z).map(|c| c.category()), Ok('Z'));
    }

    #[test]
    fn display_messages() {
        assert_eq!(
            ContainerError::CheckDigitMismatch {
                expected: 3,
                found: '4'
            }
            .to_string(),
            "check digit mismatch: expected 3, found '4'"
        );
        assert_eq!(
            ContainerError::WrongLength { len: 9 }.to_string(),
            "container number has 9 characters, expected 11"
        );
        assert!(ContainerError::BadCategory('X').to_string().contains("'X'"));
        let e: Box<dyn std::error::Error> = Box::new(ContainerError::BadSerial);
        assert_eq!(e.to_string(), "serial number must be six digits");
    }
}
