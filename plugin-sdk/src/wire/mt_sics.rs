//! Mettler Toledo MT-SICS (standard interface command set): the weight commands and the
//! balance's answers. Every line ends with CR LF.
//!
//! The host sends `SI` (weight now, stable or not) or `S` (the next stable weight). The
//! balance answers:
//!
//! - `S S <weight> <unit>`: stable weight; `S D <weight> <unit>`: dynamic (moving, `SI` only).
//!   The weight is right-aligned in a 10-character field after one space, then one space and
//!   the unit: `S S     100.00 g`.
//! - `S I`: understood but not executable now (busy, e.g. taring).
//! - `S +` / `S -`: over / under the weighing range.
//! - `ES` syntax error (command not understood), `ET` transmission error (parity, overrun),
//!   `EL` logical error (command cannot be executed).

/// Weight now, stable or dynamic.
pub const SI: &[u8] = b"SI\r\n";
/// The next stable weight.
pub const S: &[u8] = b"S\r\n";

/// A weight answer: `value` in `unit` with `decimals` decimal places, `S S` when `stable`,
/// else `S D`. `weight(100.0, 2, "g", true)` is `S S     100.00 g\r\n`.
pub fn weight(value: f64, decimals: u8, unit: &str, stable: bool) -> Vec<u8> {
    let status = if stable { 'S' } else { 'D' };
    let decimals = usize::from(decimals.min(6));
    format!("S {status} {value:>10.decimals$} {unit}\r\n").into_bytes()
}

/// `S I`: the balance is busy.
pub fn busy() -> Vec<u8> {
    b"S I\r\n".to_vec()
}

/// `S +`: over the weighing range.
pub fn overload() -> Vec<u8> {
    b"S +\r\n".to_vec()
}

/// `S -`: under the weighing range.
pub fn underload() -> Vec<u8> {
    b"S -\r\n".to_vec()
}

/// The error answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// `ES`: command not understood.
    Syntax,
    /// `ET`: transmission error (parity, overrun).
    Transmission,
    /// `EL`: command cannot be executed.
    Logical,
}

/// An error answer: `ES`, `ET` or `EL`.
pub fn error(e: Error) -> Vec<u8> {
    match e {
        Error::Syntax => b"ES\r\n".to_vec(),
        Error::Transmission => b"ET\r\n".to_vec(),
        Error::Logical => b"EL\r\n".to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_answers() {
        assert_eq!(weight(100.0, 2, "g", true), b"S S     100.00 g\r\n");
        assert_eq!(weight(-0.5, 3, "kg", false), b"S D     -0.500 kg\r\n");
        assert_eq!(weight(12.346, 2, "t", true), b"S S      12.35 t\r\n");
    }

    #[test]
    fn status_and_errors() {
        assert_eq!(busy(), b"S I\r\n");
        assert_eq!(overload(), b"S +\r\n");
        assert_eq!(underload(), b"S -\r\n");
        assert_eq!(error(Error::Syntax), b"ES\r\n");
        assert_eq!(error(Error::Transmission), b"ET\r\n");
        assert_eq!(error(Error::Logical), b"EL\r\n");
        assert_eq!(SI, b"SI\r\n");
        assert_eq!(S, b"S\r\n");
    }
}
