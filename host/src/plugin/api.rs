//! The contract versions this host serves, and the check of a plugin's requirement against them.

use semver::{Version, VersionReq};

/// WIT package the plugins are written against.
pub const PACKAGE: &str = "kakou:plugin";

/// Versions of `kakou:plugin` this host can link. A major bump keeps the previous major here
/// for a deprecation period.
pub const PROVIDED: &[Version] = &[Version::new(1, 0, 0)];

/// The provided version that satisfies `req`, newest first, or a message saying why none does.
pub fn select(req: &VersionReq) -> Result<&'static Version, String> {
    PROVIDED
        .iter()
        .rev()
        .find(|v| req.matches(v))
        .ok_or_else(|| {
            let provided: Vec<String> = PROVIDED.iter().map(ToString::to_string).collect();
            format!(
                "the plugin needs {PACKAGE} {req}, but this host provides {}",
                provided.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_one_is_served() {
        let req = VersionReq::parse("^1.0").unwrap();
        assert_eq!(select(&req).unwrap(), &Version::new(1, 0, 0));
    }

    #[test]
    fn two_is_refused_with_what_is_provided() {
        let req = VersionReq::parse("^2.0").unwrap();
        assert_eq!(
            select(&req).unwrap_err(),
            "the plugin needs kakou:plugin ^2.0, but this host provides 1.0.0"
        );
    }

    #[test]
    fn newer_minor_is_refused() {
        let req = VersionReq::parse(">=1.1").unwrap();
        assert!(select(&req).is_err());
    }
}
