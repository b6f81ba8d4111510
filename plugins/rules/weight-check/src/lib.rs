//! Weight comparison (重量比对).
//!
//! Measured gross weight minus deductions (by the configured method) is compared with the cargo
//! weight declared on the release documents covering the truck's containers, or naming the
//! vehicle for bulk cargo. A difference beyond the tolerance sends the truck to inspection; a
//! missing weight, declaration or tare asks an operator.
//!
//! Parameters:
//! - `weight.deduction`: `vehicle-and-container-tare` (default), `vehicle-tare`, or `none`
//!   (the declaration is compared with the gross weight).
//! - `weight.tolerance-percent` (default 3) and `weight.tolerance-kg` (default 0): the allowed
//!   difference is the larger of the two.
//! - `weight.container-tare-20-kg` (default 2200) and `weight.container-tare-40-kg` (default
//!   3800): container tare by ISO size (first digit of the size-type code; 2 = 20 ft, 4 = 40 ft,
//!   L = 45 ft counts as 40).
//! - `check.weight.tolerance` (default `inspect`): what a mismatch leads to, as for every
//!   check (`release`, `manual`, `inspect`, `refuse`, `off`).

use kakou_plugin_sdk::prelude::*;

/// The weight comparison rule.
pub struct WeightCheck;

/// How tare is taken off the gross weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deduction {
    None,
    VehicleTare,
    VehicleAndContainerTare,
}

impl Deduction {
    fn parse(text: Option<String>) -> Result<Self, String> {
        match text.as_deref().map(str::trim) {
            None | Some("vehicle-and-container-tare") => Ok(Deduction::VehicleAndContainerTare),
            Some("vehicle-tare") => Ok(Deduction::VehicleTare),
            Some("none") => Ok(Deduction::None),
            Some(other) => Err(format!(
                "parameter `weight.deduction` = {other:?}: expected `vehicle-and-container-tare`, `vehicle-tare` or `none`"
            )),
        }
    }
}

fn container_tare(c: &Container, host: &dyn Lookups) -> Result<f64, String> {
    let size = c.iso_type.as_deref().and_then(|t| t.chars().next());
    match size {
        Some('2') => host.number("weight.container-tare-20-kg", 2200.0),
        Some('4' | 'L') => host.number("weight.container-tare-40-kg", 3800.0),
        // Unknown size: assume the common 40 ft box, the larger deduction.
        _ => host.number("weight.container-tare-40-kg", 3800.0),
    }
}

/// The declared cargo weight of the documents the passage relies on (the SDK's one notion of
/// them: covering the containers, else naming the vehicle, plus those presented), each once.
fn declared(passage: &Passage, host: &dyn Lookups) -> Option<f64> {
    let docs = checks::documents::related(passage, host);
    let weights: Vec<f64> = docs.iter().filter_map(|d| d.declared_kg).collect();
    (!weights.is_empty()).then(|| weights.iter().sum())
}

/// No document the passage relies on declares a weight: an operator looks at the papers.
fn undeclared(verdict: &mut Verdict) {
    verdict.check(
        Check::new(
            "weight.declared",
            CheckResult::Unknown,
            "no release document declares a cargo weight",
        ),
        Outcome::Manual,
    );
}

/// The weight comparison itself: a legality criterion like any other, so
/// `check.weight.tolerance` sets what a mismatch leads to.
const TOLERANCE: checks::Code = checks::Code::new(
    "weight.tolerance",
    Outcome::Inspect,
    "measured cargo weight within tolerance of the declared weight",
);

impl Rules for WeightCheck {
    fn describe() -> RulesDescription {
        RulesDescription {
            name: "weight-check".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            rule_codes: [
                "weight.measured",
                "weight.declared",
                "weight.tare",
                "weight.tolerance",
            ]
            .map(String::from)
            .to_vec(),
            parameters: vec![
                SettingSpec::new(
                    "weight.deduction",
                    Some("vehicle-and-container-tare"),
                    "how tare is deducted",
                ),
                SettingSpec::new(
                    "weight.tolerance-percent",
                    Some("3"),
                    "allowed difference, % of declared",
                ),
                SettingSpec::new(
                    "weight.tolerance-kg",
                    Some("0"),
                    "allowed difference, kg (the larger applies)",
                ),
                SettingSpec::new(
                    "weight.container-tare-20-kg",
                    Some("2200"),
                    "tare of a 20 ft container",
                ),
                SettingSpec::new(
                    "weight.container-tare-40-kg",
                    Some("3800"),
                    "tare of a 40 ft container",
                ),
                TOLERANCE.spec(),
            ],
        }
    }

    fn evaluate(passage: &Passage, host: &dyn Lookups) -> Result<Verdict, String> {
        let mut verdict = Verdict::default();
        let method = Deduction::parse(host.parameter("weight.deduction"))?;
        let percent = host.number("weight.tolerance-percent", 3.0)?;
        let floor_kg = host.number("weight.tolerance-kg", 0.0)?;
        let Some(policy) = TOLERANCE.policy(host)? else {
            return Ok(verdict);
        };

        let declared_kg = declared(passage, host);
        let Some(weight) = passage.weight().filter(|w| w.stable) else {
            if !checks::measured_here(passage, "weight") {
                // A lane without a scale (category C, `weight` not among its required
                // readings): the cargo is released on its declaration, which must exist.
                match declared_kg {
                    Some(kg) => verdict.checks.push(Check::new(
                        "weight.measured",
                        CheckResult::Unknown,
                        format!(
                            "this lane does not weigh (weight is not among its required \
                             readings): declared {kg} kg, not compared"
                        ),
                    )),
                    None => undeclared(&mut verdict),
                }
                return Ok(verdict);
            }
            verdict.check(
                Check::new(
                    "weight.measured",
                    CheckResult::Unknown,
                    "no stable gross weight was read",
                ),
                Outcome::Manual,
            );
            return Ok(verdict);
        };
        let gross = weight.kg;

        let Some(declared_kg) = declared_kg else {
            undeclared(&mut verdict);
            return Ok(verdict);
        };

        let mut deductions = 0.0;
        if method != Deduction::None {
            let id = checks::VehicleId::read(passage, host);
            match id
                .vehicle()
                .and_then(|v| v.tare_kg.map(|t| (v.plate.clone(), t)))
            {
                Some((plate, tare)) => {
                    deductions += tare;
                    verdict.check(
                        Check::new(
                            "weight.tare",
                            CheckResult::Pass,
                            format!("vehicle tare {tare} kg"),
                        )
                        .about(plate),
                        Outcome::Manual,
                    );
                }
                // Congestion mode releases on documents: a truck not identified yet (its plate
                // is backfilled afterwards) is not held for its tare.
                None if passage.plate().is_none()
                    && passage.tag().is_none()
                    && checks::congestion(passage) =>
                {
                    verdict.checks.push(Check::new(
                        "weight.tare",
                        CheckResult::Unknown,
                        "vehicle not identified, tare unknown: released in congestion mode, \
                         weight not compared",
                    ));
                    return Ok(verdict);
                }
                None => {
                    verdict.check(
                        Check::new(
                            "weight.tare",
                            CheckResult::Unknown,
                            "vehicle tare is not registered",
                        ),
                        Outcome::Manual,
                    );
                    return Ok(verdict);
                }
            }
            if method == Deduction::VehicleAndContainerTare {
                // A container lane whose boxes were not identified (not read yet, or keyed in
                // later): their tare is unknown, so the comparison would be wrong.
                if passage.containers().is_empty()
                    && passage.lane.cargo == CargoKind::Container
                    && checks::congestion(passage)
                {
                    // Congestion mode releases on documents; the container number is
                    // backfilled afterwards (the host marks the passage `backfill-needed`).
                    verdict.checks.push(Check::new(
                        "weight.tare",
                        CheckResult::Unknown,
                        "no container identified, its tare unknown: released in congestion \
                         mode, weight not compared",
                    ));
                    return Ok(verdict);
                }
                if passage.containers().is_empty() && passage.lane.cargo == CargoKind::Container {
                    verdict.check(
                        Check::new(
                            "weight.tare",
                            CheckResult::Unknown,
                            "no container identified on a container lane: its tare cannot be deducted",
                        ),
                        Outcome::Manual,
                    );
                    return Ok(verdict);
                }
                for c in passage.containers() {
                    deductions += container_tare(c, host)?;
                }
            }
        }

        let cargo = gross - deductions;
        let diff = cargo - declared_kg;
        let allowed = (declared_kg * percent / 100.0).max(floor_kg);
        let message = format!(
            "measured {gross} kg − deductions {deductions} kg = {cargo} kg; declared {declared_kg} kg; \
             difference {diff:+} kg, allowed ±{allowed} kg"
        );
        if diff.abs() <= allowed {
            policy.pass(&mut verdict, None, message);
        } else {
            policy.fail(&mut verdict, None, message.clone());
            verdict.alarm("weight.mismatch", Severity::Warning, message);
        }
        Ok(verdict)
    }
}

kakou_plugin_sdk::export_rules!(WeightCheck);

#[cfg(test)]
mod tests {
    use super::*;
    use kakou_plugin_sdk::harness::Dataset;

    fn data() -> Dataset {
        Dataset {
            vehicles: vec![Vehicle {
                plate: "粤B12345".into(),
                tag_epc: Some("E2000017221101441890ABCD".into()),
                enterprise: "E001".into(),
                tare_kg: Some(15000.0),
                active: true,
                ..Default::default()
            }],
            documents: vec![Document {
                kind: DocumentKind::TransitRelease,
                number: "T5201202611270001".into(),
                containers: vec!["CSQU3054383".into()],
                declared_kg: Some(20000.0),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn passage(gross: f64) -> Passage {
        let obs = |reading: Reading| Observation {
            device: "d".into(),
            reading,
            ..Default::default()
        };
        Passage {
            id: "P1".into(),
            observations: vec![
                obs(Weight {
                    kg: gross,
                    stable: true,
                    ..Default::default()
                }
                .into()),
                obs(Plate {
                    text: "粤B12345".into(),
                    confidence: 95,
                    ..Default::default()
                }
                .into()),
                obs(Container {
                    number: "CSQU3054383".into(),
                    iso_type: Some("22G1".into()),
                    confidence: 90,
                    ..Default::default()
                }
                .into()),
            ],
            ..Default::default()
        }
    }

    fn outcome(gross: f64, data: &Dataset) -> Verdict {
        WeightCheck::evaluate(&passage(gross), &data.at(0)).unwrap()
    }

    #[test]
    fn within_tolerance_releases() {
        // 15000 tare + 2200 container + 20000 cargo = 37200; 3 % of 20000 = 600.
        let v = outcome(37_700.0, &data());
        assert_eq!(v.outcome, Outcome::Release, "{v:?}");
        assert!(
            v.checks
                .iter()
                .any(|c| c.code == "weight.tolerance" && c.result == CheckResult::Pass)
        );
    }

    #[test]
    fn beyond_tolerance_inspects_with_alarm() {
        let v = outcome(38_000.0, &data());
        assert_eq!(v.outcome, Outcome::Inspect);
        assert_eq!(v.alarms.len(), 1);
        assert!(
            v.alarms[0].message.contains("difference +800 kg"),
            "{}",
            v.alarms[0].message
        );
    }

    #[test]
    fn deduction_method_and_tolerance_are_parameters() {
        let mut d = data();
        d.parameters = vec![
            Setting::new("weight.deduction", "vehicle-tare"),
            Setting::new("weight.tolerance-kg", "2500"),
        ];
        // 37200 − 15000 = 22200 against 20000: +2200, allowed max(600, 2500).
        assert_eq!(outcome(37_200.0, &d).outcome, Outcome::Release);
        d.parameters[1] = Setting::new("weight.tolerance-kg", "1000");
        assert_eq!(outcome(37_200.0, &d).outcome, Outcome::Inspect);
    }

    #[test]
    fn what_a_mismatch_leads_to_is_a_parameter() {
        let mut d = data();
        d.parameters = vec![Setting::new("check.weight.tolerance", "refuse")];
        assert_eq!(outcome(38_000.0, &d).outcome, Outcome::Refuse);
        d.parameters = vec![Setting::new("check.weight.tolerance", "off")];
        let v = outcome(38_000.0, &d);
        assert_eq!((v.outcome, v.checks.len()), (Outcome::Release, 0));
    }

    #[test]
    fn an_unidentified_container_on_a_container_lane_asks_an_operator() {
        // A category B lane: the plate and box are keyed in after the weight is taken.
        let mut p = passage(37_700.0);
        p.lane.cargo = CargoKind::Container;
        p.observations
            .retain(|o| !matches!(o.reading.value, ReadingValue::Container(_)));
        let mut d = data();
        d.documents[0].plate = Some("粤B12345".into());
        let v = WeightCheck::evaluate(&p, &d.at(0)).unwrap();
        assert_eq!(v.outcome, Outcome::Manual, "{v:?}");
        assert!(
            v.checks
                .iter()
                .any(|c| c.code == "weight.tare" && c.result == CheckResult::Unknown)
        );
    }

    #[test]
    fn in_congestion_mode_an_unidentified_container_does_not_hold_the_truck() {
        let mut p = passage(37_700.0);
        p.lane.cargo = CargoKind::Container;
        p.observations
            .retain(|o| !matches!(o.reading.value, ReadingValue::Container(_)));
        p.attributes.push(Setting::new("congestion-mode", "true"));
        let mut d = data();
        d.documents[0].plate = Some("粤B12345".into());
        let v = WeightCheck::evaluate(&p, &d.at(0)).unwrap();
        assert_eq!(v.outcome, Outcome::Release, "{v:?}");
        let tare = v
            .checks
            .iter()
            .find(|c| c.code == "weight.tare" && c.result == CheckResult::Unknown);
        assert!(
            tare.is_some_and(|c| c.message.contains("congestion mode")),
            "{v:?}"
        );
    }

    #[test]
    fn a_lane_that_does_not_weigh_checks_the_declaration_only() {
        // Category C without a scale: the host lists what the lane reads, weight not among it.
        let mut p = passage(0.0);
        p.observations
            .retain(|o| !matches!(o.reading.value, ReadingValue::Weight(_)));
        p.attributes.push(Setting::new("required", "card"));
        let v = WeightCheck::evaluate(&p, &data().at(0)).unwrap();
        assert_eq!(v.outcome, Outcome::Release, "{v:?}");
        assert!(
            v.checks[0].code == "weight.measured"
                && v.checks[0].message.contains("declared 20000 kg"),
            "{v:?}"
        );
        // Nothing declared: an operator must see the document.
        let mut d = data();
        d.documents[0].declared_kg = None;
        let v = WeightCheck::evaluate(&p, &d.at(0)).unwrap();
        assert_eq!(
            (v.outcome, v.checks[0].code.as_str()),
            (Outcome::Manual, "weight.declared")
        );
        // A lane that weighs and read nothing still asks an operator.
        p.attributes = vec![Setting::new("required", "card,weight")];
        let v = WeightCheck::evaluate(&p, &data().at(0)).unwrap();
        assert_eq!(
            (v.outcome, v.checks[0].code.as_str()),
            (Outcome::Manual, "weight.measured")
        );
    }

    #[test]
    fn a_difference_equal_to_the_allowance_is_within_tolerance() {
        // 37200 expected; allowed ±600 kg: 37800 is exactly at the limit.
        assert_eq!(outcome(37_800.0, &data()).outcome, Outcome::Release);
        assert_eq!(outcome(37_800.5, &data()).outcome, Outcome::Inspect);
    }

    #[test]
    fn missing_data_asks_an_operator() {
        let mut d = data();
        d.vehicles.clear();
        let v = outcome(37_200.0, &d);
        assert_eq!(v.outcome, Outcome::Manual);
        assert_eq!(v.checks[0].code, "weight.tare");

        let mut p = passage(37_200.0);
        p.observations.remove(0);
        let v = WeightCheck::evaluate(&p, &data().at(0)).unwrap();
        assert_eq!(
            (v.outcome, v.checks[0].code.as_str()),
            (Outcome::Manual, "weight.measured")
        );
    }

    #[test]
    fn bad_parameter_is_an_error_naming_it() {
        let mut d = data();
        d.parameters = vec![Setting::new("weight.tolerance-percent", "three")];
        let e = WeightCheck::evaluate(&passage(1.0), &d.at(0)).unwrap_err();
        assert_eq!(
            e,
            "parameter `weight.tolerance-percent` = \"three\" is not a number"
        );
    }
}
