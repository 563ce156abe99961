//! Number parsing that accepts every float syntax found in the wild: C (`1.5e-3`), Fortran
//! (`1.5D-3`) and Mathematica (`1.5*^-3`, which some original QM9 files contain).

use crate::excerpt;

/// Parses a float; `None` when `text` is not a number at all. NaN and inf parse (callers
/// decide whether they are acceptable, with a message that says where they were found).
pub fn parse_f64(text: &str) -> Option<f64> {
    if let Ok(x) = text.parse::<f64>() {
        return Some(x);
    }
    let normalised = text.replacen("*^", "e", 1).replacen(['D', 'd'], "e", 1);
    normalised.parse::<f64>().ok()
}

/// Parses a float and insists that it is finite.
pub fn parse_finite(text: &str) -> Result<f64, String> {
    match parse_f64(text) {
        Some(x) if x.is_finite() => Ok(x),
        Some(_) => Err(format!("non-finite number {}", excerpt(text))),
        None => Err(format!("{} is not a number", excerpt(text))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_c_fortran_and_mathematica_exponents() {
        assert_eq!(parse_f64("1.5e-3"), Some(1.5e-3));
        assert_eq!(parse_f64("1.5E+3"), Some(1.5e3));
        assert_eq!(parse_f64("1.5D-3"), Some(1.5e-3));
        assert_eq!(parse_f64("-2.1997*^-6"), Some(-2.1997e-6));
        assert_eq!(parse_f64(".5"), Some(0.5));
        assert_eq!(parse_f64("5."), Some(5.0));
        assert_eq!(parse_f64("-0"), Some(0.0));
    }

    #[test]
    fn rejects_garbage_and_flags_non_finite() {
        assert_eq!(parse_f64("abc"), None);
        assert_eq!(parse_f64(""), None);
        assert_eq!(parse_f64("1.0.0"), None);
        assert!(parse_finite("nan").is_err());
        assert!(parse_finite("-inf").is_err());
        assert!(parse_finite("x").unwrap_err().contains("not a number"));
    }
}
