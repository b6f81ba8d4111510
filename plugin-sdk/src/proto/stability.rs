//! Weight stability for indicators that do not flag it: a weight is stable after `count`
//! consecutive readings within `band_kg` of each other. Also decides which readings are worth
//! reporting, so a scale streaming at 50 Hz does not flood the lane with identical values.

/// Which readings to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Every reading.
    Every,
    /// Only when the weight or its stability changes.
    Change,
}

impl Report {
    /// Parses the conventional `report` setting: `change` or `every`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "change" => Ok(Report::Change),
            "every" => Ok(Report::Every),
            other => Err(format!(
                "setting `report`: expected `change` or `every`, got {other:?}"
            )),
        }
    }
}

/// Tracks consecutive readings and judges stability.
#[derive(Debug, Clone)]
pub struct StabilityFilter {
    count: u32,
    band_kg: f64,
    report: Report,
    run: Option<(f64, u32)>,
    last_reported: Option<(f64, bool)>,
}

impl StabilityFilter {
    /// Stable after `count` (at least 1) readings within `band_kg` (not negative).
    pub fn new(count: u32, band_kg: f64, report: Report) -> Result<Self, String> {
        if band_kg.is_nan() || band_kg < 0.0 {
            return Err(format!(
                "setting `stable-band-kg`: expected a non-negative number, got {band_kg}"
            ));
        }
        Ok(StabilityFilter {
            count: count.max(1),
            band_kg,
            report,
            run: None,
            last_reported: None,
        })
    }

    /// Reads the conventional settings `stable-count` (default 3), `stable-band-kg` (default 0)
    /// and `report` (default `change`).
    pub fn from_config(config: &crate::Config) -> Result<Self, String> {
        let count = config.get::<u32>("stable-count", 3)?;
        let band = config.get::<f64>("stable-band-kg", 0.0)?;
        let report = Report::parse(config.text("report").unwrap_or("change"))?;
        Self::new(count, band, report)
    }

    /// The settings [`Self::from_config`] reads, for a driver's description.
    pub fn setting_specs() -> Vec<crate::model::SettingSpec> {
        use crate::model::SettingSpec;
        vec![
            SettingSpec::new(
                "stable-count",
                Some("3"),
                "consecutive readings within the band that make a weight stable",
            ),
            SettingSpec::new(
                "stable-band-kg",
                Some("0"),
                "how far (kg) readings may differ and still count as the same weight",
            ),
            SettingSpec::new(
                "report",
                Some("change"),
                "`change`: report when the weight or its stability changes; `every`: every reading",
            ),
        ]
    }

    /// Takes one reading; returns `(kg, stable)` when it should be reported.
    pub fn observe(&mut self, kg: f64) -> Option<(f64, bool)> {
        let n = match self.run {
            Some((last, n)) if (kg - last).abs() <= self.band_kg => n.saturating_add(1),
            _ => 1,
        };
        self.run = Some((kg, n));
        let stable = n >= self.count;
        if self.report == Report::Change && self.last_reported == Some((kg, stable)) {
            return None;
        }
        self.last_reported = Some((kg, stable));
        Some((kg, stable))
    }

    /// Forgets the run (e.g. after the indicator reported motion or an error).
    pub fn reset(&mut self) {
        self.run = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_after_count_and_reported_on_change() {
        let mut f = StabilityFilter::new(3, 0.0, Report::Change).unwrap();
        let got: Vec<_> = [100.0, 100.0, 100.0, 100.0, 120.0]
            .iter()
            .filter_map(|kg| f.observe(*kg))
            .collect();
        assert_eq!(got, vec![(100.0, false), (100.0, true), (120.0, false)]);
    }

    #[test]
    fn band_and_every() {
        let mut f = StabilityFilter::new(2, 5.0, Report::Every).unwrap();
        let got: Vec<_> = [100.0, 104.0, 110.0]
            .iter()
            .filter_map(|kg| f.observe(*kg))
            .collect();
        assert_eq!(got, vec![(100.0, false), (104.0, true), (110.0, false)]);
    }

    #[test]
    fn bad_settings() {
        assert!(StabilityFilter::new(1, -1.0, Report::Every).is_err());
        assert_eq!(
            Report::parse("often").unwrap_err(),
            "setting `report`: expected `change` or `every`, got \"often\""
        );
    }
}
