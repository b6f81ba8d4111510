//! Decimal scaling shared by weighing drivers: indicators send an integer and a decimal
//! position, and the kilogram value should carry at most one rounding.

/// `mantissa` × 10^`exp`. Dividing by an exact power of ten (rather than multiplying by an
/// inexact negative one) keeps values such as 4.139 exactly as printed.
pub fn scale_pow10(mantissa: f64, exp: i32) -> f64 {
    if exp >= 0 {
        mantissa * 10f64.powi(exp)
    } else {
        mantissa / 10f64.powi(-exp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rounding() {
        assert_eq!(scale_pow10(4139.0, -3), 4.139);
        assert_eq!(scale_pow10(567.0, -2), 5.67);
        assert_eq!(scale_pow10(12.0, 3), 12_000.0);
        assert_eq!(scale_pow10(-1250.0, -2), -12.5);
    }
}
