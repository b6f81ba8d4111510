//! The parameter catalogue: every kind of value, each refusal with its exact message, and the
//! names suggested for a misspelt one.

use std::path::PathBuf;

use super::*;

fn by() -> DeclaredBy {
    DeclaredBy::RuleSet {
        id: "test@1".into(),
        path: PathBuf::from("r.toml"),
    }
}

fn declare(catalog: &mut ParameterCatalog, name: &str, toml_text: &str) {
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("x = {toml_text}"))
        .expect("declaration text")
        .remove("x")
        .expect("x");
    let raw: RawDeclaration = value.try_into().expect("declaration shape");
    catalog.declare(raw.into_spec(name, by()).expect("declaration"));
}

const CHECK: &str = r#"values = ["release", "manual", "inspect", "refuse", "off"]"#;

/// A catalogue like a site's: a rule set's parameters of every type, and one lane's.
fn catalog() -> ParameterCatalog {
    let mut c = ParameterCatalog::new();
    declare(
        &mut c,
        "weight.tolerance-percent",
        r#"{ default = "3", type = "decimal", min = 0, max = 100, unit = "%" }"#,
    );
    declare(
        &mut c,
        "pilot.two-plate.max-open-entries",
        r#"{ default = 1, type = "integer", min = 1, max = 10 }"#,
    );
    declare(
        &mut c,
        "transit.time-limit-hours",
        r#"{ default = "48", type = "hours", min = 1, max = 720 }"#,
    );
    declare(
        &mut c,
        "driver.require-vehicle-binding",
        r#"{ default = false, type = "boolean" }"#,
    );
    declare(
        &mut c,
        "container.accepted-documents",
        r#"{ default = "transit-release,bonded", type = "list", values = ["transit-release", "local-clearance", "bonded"], min-items = 1 }"#,
    );
    declare(
        &mut c,
        "check.driver.card",
        &format!(r#"{{ default = "inspect", type = "enumeration", {CHECK} }}"#),
    );
    declare(
        &mut c,
        "check.driver.vehicle-binding",
        &format!(r#"{{ default = "inspect", type = "enumeration", {CHECK} }}"#),
    );
    declare(
        &mut c,
        "check.control.vehicle",
        r#"{ default = "release", type = "enumeration", values = ["release", "manual", "inspect", "refuse"] }"#,
    );
    declare(&mut c, "site.note", r#"{ default = "x", type = "text" }"#);
    c.declare(
        ParameterSpec::new(
            "lane.L01.congestion",
            ParamType::Boolean,
            DeclaredBy::Lane("L01".into()),
        )
        .doc("congestion mode"),
    );
    c
}

#[test]
fn values_are_stored_in_their_canonical_spelling() {
    let c = catalog();
    let cases: &[(&str, &str, &str)] = &[
        ("weight.tolerance-percent", " 2.50 ", "2.5"),
        ("weight.tolerance-percent", "0", "0"),
        ("weight.tolerance-percent", "100", "100"),
        ("pilot.two-plate.max-open-entries", "+3", "3"),
        ("transit.time-limit-hours", "36", "36"),
        ("transit.time-limit-hours", "36h", "36"),
        ("transit.time-limit-hours", "1.5 d", "36"),
        ("transit.time-limit-hours", "90min", "1.5"),
        ("driver.require-vehicle-binding", "Yes", "true"),
        ("lane.L01.congestion", "on", "true"),
        ("lane.L01.congestion", "0", "false"),
        ("check.driver.card", " Refuse ", "refuse"),
        (
            "container.accepted-documents",
            "Transit_Release, bonded ,bonded",
            "transit-release,bonded",
        ),
        ("site.note", "  anything  ", "anything"),
        (" check.driver.card ", "off", "off"),
    ];
    for (name, value, want) in cases {
        let n = c
            .validate(name, value)
            .unwrap_or_else(|e| panic!("{name} = {value:?}: {e}"));
        assert_eq!(
            (n.name.as_str(), n.value.as_str()),
            (name.trim(), *want),
            "{name} = {value:?}"
        );
    }
}

#[test]
fn each_refusal_says_what_was_expected_where_and_what_was_given() {
    let c = catalog();
    let pct = "expected a decimal number from 0 to 100 % (default \"3\"; declared by rule set test@1 (r.toml))";
    let check = "one of release, manual, inspect, refuse, off (default \"inspect\"; declared by rule set test@1 (r.toml))";
    let cases: Vec<(&str, &str, String)> = vec![
        (
            "weight.tolerance-percent",
            "two",
            format!("parameter `weight.tolerance-percent` = \"two\": not a decimal number; {pct}"),
        ),
        (
            "weight.tolerance-percent",
            "1e2",
            format!("parameter `weight.tolerance-percent` = \"1e2\": not a decimal number; {pct}"),
        ),
        (
            "weight.tolerance-percent",
            "150",
            format!("parameter `weight.tolerance-percent` = \"150\": out of range; {pct}"),
        ),
        (
            "weight.tolerance-percent",
            "-1",
            format!("parameter `weight.tolerance-percent` = \"-1\": out of range; {pct}"),
        ),
        (
            "weight.tolerance-percent",
            "  ",
            format!("parameter `weight.tolerance-percent` is empty: {pct}"),
        ),
        (
            "pilot.two-plate.max-open-entries",
            "1.5",
            "parameter `pilot.two-plate.max-open-entries` = \"1.5\": not a whole number; expected a whole number from 1 to 10 (default \"1\"; declared by rule set test@1 (r.toml))".into(),
        ),
        (
            "pilot.two-plate.max-open-entries",
            "0",
            "parameter `pilot.two-plate.max-open-entries` = \"0\": out of range; expected a whole number from 1 to 10 (default \"1\"; declared by rule set test@1 (r.toml))".into(),
        ),
        (
            "transit.time-limit-hours",
            "soon",
            "parameter `transit.time-limit-hours` = \"soon\": not a number of hours; expected a number of hours, optionally with a unit (36, 36h, 1.5d, 90min) from 1 to 720 h (default \"48\"; declared by rule set test@1 (r.toml))".into(),
        ),
        (
            "transit.time-limit-hours",
            "31d",
            "parameter `transit.time-limit-hours` = \"31d\": out of range; expected a number of hours, optionally with a unit (36, 36h, 1.5d, 90min) from 1 to 720 h (default \"48\"; declared by rule set test@1 (r.toml))".into(),
        ),
        (
            "driver.require-vehicle-binding",
            "sometimes",
            "parameter `driver.require-vehicle-binding` = \"sometimes\": not true or false; expected true or false (default \"false\"; declared by rule set test@1 (r.toml))".into(),
        ),
        (
            "lane.L01.congestion",
            "maybe",
            "parameter `lane.L01.congestion` = \"maybe\": not true or false; expected true or false (declared by lane L01 of the site manifest)".into(),
        ),
        (
            "check.driver.card",
            "stop",
            format!("parameter `check.driver.card` = \"stop\": not one of its values; expected {check}"),
        ),
        (
            "check.control.vehicle",
            "off",
            "parameter `check.control.vehicle` = \"off\": not one of its values; expected one of release, manual, inspect, refuse (default \"release\"; declared by rule set test@1 (r.toml))".into(),
        ),
        (
            "container.accepted-documents",
            "transit-release,manifest",
            "parameter `container.accepted-documents` = \"transit-release,manifest\": item \"manifest\" is not one of its values; expected a comma-separated list of transit-release, local-clearance, bonded, at least 1 item(s) (default \"transit-release,bonded\"; declared by rule set test@1 (r.toml))".into(),
        ),
        (
            "container.accepted-documents",
            " , ",
            "parameter `container.accepted-documents` = \" , \": 0 item(s); expected a comma-separated list of transit-release, local-clearance, bonded, at least 1 item(s) (default \"transit-release,bonded\"; declared by rule set test@1 (r.toml))".into(),
        ),
        (
            "weight.tolerance-percnt",
            "2",
            "unknown parameter `weight.tolerance-percnt` (did you mean `weight.tolerance-percent`?): nothing on this site reads it. The parameters a site may set are declared by rule set test@1 (r.toml) and the lanes L01 (lane.<id>.*); check the spelling".into(),
        ),
        (
            "check.driver-card-required",
            "true",
            "unknown parameter `check.driver-card-required` (did you mean `check.driver.card`?): nothing on this site reads it. The parameters a site may set are declared by rule set test@1 (r.toml) and the lanes L01 (lane.<id>.*); check the spelling".into(),
        ),
        (
            "check.driver-bound-to-vehicle",
            "false",
            "unknown parameter `check.driver-bound-to-vehicle` (did you mean `check.driver.vehicle-binding`?): nothing on this site reads it. The parameters a site may set are declared by rule set test@1 (r.toml) and the lanes L01 (lane.<id>.*); check the spelling".into(),
        ),
        (
            "lane.L02.congestion",
            "true",
            "unknown parameter `lane.L02.congestion` (did you mean `lane.L01.congestion`?): nothing on this site reads it. The parameters a site may set are declared by rule set test@1 (r.toml) and the lanes L01 (lane.<id>.*); check the spelling".into(),
        ),
        (
            "colour",
            "red",
            "unknown parameter `colour`: nothing on this site reads it. The parameters a site may set are declared by rule set test@1 (r.toml) and the lanes L01 (lane.<id>.*); check the spelling".into(),
        ),
    ];
    let mut wrong = Vec::new();
    for (name, value, want) in &cases {
        match c.validate(name, value) {
            Err(e) if e.to_string() == *want => {}
            other => wrong.push(format!(
                "{name} = {value:?}\n  expected {want}\n  got      {other:?}"
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn an_unknown_name_is_the_name_field_and_a_bad_value_the_value_field() {
    let c = catalog();
    let unknown = c.validate("colour", "red").unwrap_err();
    assert_eq!(unknown.field(), "name");
    assert!(matches!(
        &unknown,
        ParameterError::Unknown { suggestions, .. } if suggestions.is_empty()
    ));
    assert_eq!(
        c.validate("check.driver.card", "x").unwrap_err().field(),
        "value"
    );
    let empty = ParameterCatalog::new()
        .validate("weight.tolerance-percent", "3")
        .unwrap_err();
    assert_eq!(
        empty.to_string(),
        "unknown parameter `weight.tolerance-percent`: nothing on this site reads it. The \
         parameters a site may set are declared by nothing: no rule set is loaded; check the \
         spelling"
    );
}

#[test]
fn suggestions_are_the_closest_three() {
    let mut c = ParameterCatalog::new();
    for n in ["check.a", "check.b", "check.c", "check.d", "weight.x"] {
        c.declare(ParameterSpec::new(n, ParamType::Text, by()));
    }
    assert_eq!(
        c.suggestions("check.e"),
        ["check.a", "check.b", "check.c"],
        "ties by name"
    );
    assert_eq!(c.suggestions("weight.y"), ["weight.x"]);
    assert!(c.suggestions("transit.time-limit-hours").is_empty());
}

#[test]
fn declarations_are_checked() {
    let parse = |text: &str| -> Result<ParameterSpec, String> {
        let value: toml::Value = toml::from_str::<toml::Table>(&format!("x = {text}"))
            .map_err(|e| e.to_string())?
            .remove("x")
            .ok_or("x")?;
        let raw: RawDeclaration = value
            .try_into()
            .map_err(|e: toml::de::Error| e.message().to_owned())?;
        raw.into_spec("p", by()).map_err(|e| e.to_string())
    };
    let cases: &[(&str, &str)] = &[
        (
            r#"{ default = "1", type = "float" }"#,
            "type \"float\": expected integer, decimal, hours, boolean, enumeration, list or text",
        ),
        (
            r#"{ default = "1", type = "decimal", min = 5, max = 1 }"#,
            "`min` 5 is above `max` 1",
        ),
        (
            r#"{ default = "1", type = "boolean", min = 0 }"#,
            "`min` does not apply to type boolean",
        ),
        (
            r#"{ default = "1", type = "hours", unit = "h" }"#,
            "`unit` does not apply to type hours",
        ),
        (
            r#"{ default = "1", type = "decimal", values = ["1"] }"#,
            "`values` does not apply to type decimal",
        ),
        (
            r#"{ default = "a", type = "enumeration", min-items = 1, values = ["a"] }"#,
            "`min-items` does not apply to type enumeration",
        ),
        (
            r#"{ default = "a", type = "enumeration" }"#,
            "`values`: an enumeration lists the values it takes",
        ),
        (
            r#"{ default = "a", type = "enumeration", values = ["a", "A"] }"#,
            "`values`: a value is listed twice",
        ),
        (
            r#"{ default = "a", type = "list", values = ["a,b"] }"#,
            "`values`: a value is empty or contains a comma",
        ),
        (
            r#"{ default = [1], type = "text" }"#,
            "`default`: expected a string, number or boolean",
        ),
        (
            r#"{ default = "200", type = "decimal", max = 100, unit = "%" }"#,
            "`default` does not fit the declaration: parameter `p` = \"200\": out of range; expected a decimal number of at most 100 % (declared by rule set test@1 (r.toml))",
        ),
    ];
    let mut wrong = Vec::new();
    for (text, want) in cases {
        match parse(text) {
            Err(e) if e == *want => {}
            other => wrong.push(format!("{text}\n  expected {want}\n  got      {other:?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let spec = parse(r#"{ default = 3, type = "decimal", unit = "kg", doc = "d" }"#).expect("ok");
    assert_eq!(
        (
            spec.default.as_deref(),
            spec.unit.as_deref(),
            spec.doc.as_str()
        ),
        (Some("3"), Some("kg"), "d")
    );
}

#[test]
fn a_bare_default_gets_the_loosest_type_its_value_allows() {
    for (value, kind) in [
        ("true", "boolean"),
        ("3", "decimal"),
        ("2.5", "decimal"),
        ("none", "text"),
    ] {
        assert_eq!(inferred("p", value, by()).kind.name(), kind, "{value:?}");
    }
    let spec = inferred("weight.tolerance-percent", "3", by());
    assert!(!spec.declared);
    assert!(spec.check("two").is_err());
    assert_eq!(spec.check("2.5").as_deref(), Ok("2.5"));
}
