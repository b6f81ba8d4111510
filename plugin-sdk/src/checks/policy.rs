//! Legality criteria as parameters (DOMAIN §2.7 item 6): what a check's failure leads to, read
//! once here for every check of every rule set.

use crate::model::{
    Check, CheckResult, Outcome, Passage, RulesDescription, SettingSpec, Severity, Verdict,
};
use crate::rules::Lookups;

use super::Rule;

/// A check's reason code, and what its failure leads to unless the site says otherwise.
///
/// The site overrides the default with the parameter `check.<code>`: `release` (recorded, no
/// effect on the outcome), `manual`, `inspect`, `refuse`, or `off` (the check is not run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    /// Stable reason code, e.g. `container.number`. Stored with every passage and searched by
    /// officers, so it never changes once published.
    pub code: &'static str,
    /// What a failure leads to by default.
    pub on_fail: Outcome,
    /// `false` for checks a parameter may not switch off (control orders: customs revokes an
    /// order, a site parameter does not silence it).
    pub switchable: bool,
    /// One line on what the check asks, for `describe` and the parameter list.
    pub doc: &'static str,
}

impl Code {
    /// A check code whose failure leads to `on_fail` by default.
    pub const fn new(code: &'static str, on_fail: Outcome, doc: &'static str) -> Self {
        Code {
            code,
            on_fail,
            switchable: true,
            doc,
        }
    }

    /// The same code, but `check.<code>` = `off` is refused.
    pub const fn always_on(mut self) -> Self {
        self.switchable = false;
        self
    }

    /// The parameter that sets what a failure leads to: `check.<code>`.
    pub fn parameter(&self) -> String {
        format!("check.{}", self.code)
    }

    /// The site's setting for this check, or `None` when it is switched off.
    ///
    /// An unknown value is an error naming the parameter: a verdict built on a misread legality
    /// criterion would be wrong in a way nobody notices, so the lane asks an operator instead.
    pub fn policy(&self, host: &dyn Lookups) -> Result<Option<Policy>, String> {
        let name = self.parameter();
        let Some(text) = host.parameter(&name) else {
            return Ok(Some(Policy {
                code: self.code,
                on_fail: self.on_fail,
            }));
        };
        let on_fail = match text.trim().to_ascii_lowercase().as_str() {
            "off" if self.switchable => return Ok(None),
            "off" => {
                return Err(format!(
                    "parameter `{name}` = \"off\": this check cannot be switched off (revoke the control order instead)"
                ));
            }
            "release" => Outcome::Release,
            "manual" => Outcome::Manual,
            "inspect" => Outcome::Inspect,
            "refuse" => Outcome::Refuse,
            _ => {
                let allowed = if self.switchable {
                    "`release`, `manual`, `inspect`, `refuse` or `off`"
                } else {
                    "`release`, `manual`, `inspect` or `refuse`"
                };
                return Err(format!("parameter `{name}` = {text:?}: expected {allowed}"));
            }
        };
        Ok(Some(Policy {
            code: self.code,
            on_fail,
        }))
    }

    /// The `check.<code>` parameter with its default, for [`RulesDescription::parameters`].
    pub fn spec(&self) -> SettingSpec {
        let doc = if self.switchable {
            format!(
                "what a failure of {} leads to: release, manual, inspect, refuse or off ({})",
                self.code, self.doc
            )
        } else {
            format!(
                "least outcome of a hit on top of the order's own action: release, manual, inspect or refuse ({})",
                self.doc
            )
        };
        SettingSpec::new(&self.parameter(), Some(outcome_name(self.on_fail)), &doc)
    }
}

/// The parameter-library spelling of an outcome.
pub fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Release => "release",
        Outcome::Manual => "manual",
        Outcome::Inspect => "inspect",
        Outcome::Refuse => "refuse",
    }
}

/// A check as the site configured it: its code and what a failure leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The reason code recorded.
    pub code: &'static str,
    /// What a failure leads to.
    pub on_fail: Outcome,
}

impl Policy {
    /// What an unknown result (data missing) leads to: manual processing, or less when even a
    /// failure would lead to less. A site that only records a check's failures does not want
    /// a truck stopped because the same check could not be made.
    pub fn on_unknown(&self) -> Outcome {
        self.on_fail.min(Outcome::Manual)
    }

    /// Records a result: pass → release, fail → [`on_fail`](Self::on_fail), unknown →
    /// [`on_unknown`](Self::on_unknown).
    pub fn record(
        &self,
        verdict: &mut Verdict,
        result: CheckResult,
        subject: Option<&str>,
        message: impl Into<String>,
    ) {
        let needed = match result {
            CheckResult::Pass => Outcome::Release,
            CheckResult::Fail => self.on_fail,
            CheckResult::Unknown => self.on_unknown(),
        };
        self.push(verdict, result, subject, message, needed);
    }

    /// Records a pass.
    pub fn pass(&self, verdict: &mut Verdict, subject: Option<&str>, message: impl Into<String>) {
        self.record(verdict, CheckResult::Pass, subject, message);
    }

    /// Records a failure.
    pub fn fail(&self, verdict: &mut Verdict, subject: Option<&str>, message: impl Into<String>) {
        self.record(verdict, CheckResult::Fail, subject, message);
    }

    /// Records an unknown result (data missing).
    pub fn unknown(
        &self,
        verdict: &mut Verdict,
        subject: Option<&str>,
        message: impl Into<String>,
    ) {
        self.record(verdict, CheckResult::Unknown, subject, message);
    }

    /// Records a failure that demands at least `at_least` (a control order's action), or the
    /// configured outcome when that is more severe.
    pub fn fail_at_least(
        &self,
        verdict: &mut Verdict,
        at_least: Outcome,
        subject: Option<&str>,
        message: impl Into<String>,
    ) {
        let needed = self.on_fail.max(at_least);
        self.push(verdict, CheckResult::Fail, subject, message, needed);
    }

    /// Records that a reading the check needs (container number, plate) is missing; `fact`
    /// says which, e.g. "no container number was read".
    ///
    /// Normally that is an unknown result and an operator keys the reading in. In congestion
    /// mode (passage attribute `congestion-mode` = `true`) the truck is released on its
    /// documents instead: the check is recorded as unknown without effect on the outcome, and
    /// an info alarm `backfill.<what>` tells the operators to backfill the reading afterwards.
    pub fn missing_read(&self, verdict: &mut Verdict, passage: &Passage, what: &str, fact: &str) {
        if congestion(passage) {
            self.push(
                verdict,
                CheckResult::Unknown,
                None,
                format!("{fact}: released in congestion mode, backfill it afterwards"),
                Outcome::Release,
            );
            verdict.alarm(
                &format!("backfill.{what}"),
                Severity::Info,
                format!("backfill needed: {fact}"),
            );
        } else {
            self.unknown(verdict, None, format!("{fact}: an operator keys it in"));
        }
    }

    fn push(
        &self,
        verdict: &mut Verdict,
        result: CheckResult,
        subject: Option<&str>,
        message: impl Into<String>,
        needed: Outcome,
    ) {
        let mut check = Check::new(self.code, result, message);
        check.subject = subject.map(str::to_owned);
        verdict.outcome = verdict.outcome.max(needed);
        verdict.checks.push(check);
    }
}

/// Whether the passage's lane reads `kind` (`weight`, `container`, …) from its devices: the
/// host lists them in the passage's `required` attribute. A kind the lane does not read, say
/// `weight` on a category C lane without a scale, is "not measured here", not "not read".
/// A passage without the attribute (an older record, a replay) counts every kind as read.
pub fn measured_here(passage: &Passage, kind: &str) -> bool {
    passage
        .attribute("required")
        .is_none_or(|list| list.split(',').any(|k| k.trim() == kind))
}

/// Whether the host put the lane in congestion mode (release on valid documents first,
/// backfill container and plate afterwards; DOMAIN §2.7, exception handling).
pub fn congestion(passage: &Passage) -> bool {
    passage
        .attribute("congestion-mode")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// A parameter a rule reads, with its default, as a constant (see [`Rule`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// Parameter name.
    pub key: &'static str,
    /// Value used when the site does not set it.
    pub default: &'static str,
    /// What it does.
    pub doc: &'static str,
}

impl Param {
    /// The [`SettingSpec`] for `describe`.
    pub fn spec(&self) -> SettingSpec {
        SettingSpec::new(self.key, Some(self.default), self.doc)
    }

    /// The site's value, or the default when unset.
    pub fn text(&self, host: &dyn Lookups) -> String {
        host.parameter(self.key)
            .unwrap_or_else(|| self.default.to_owned())
    }

    fn refuse(&self, text: &str, expected: &str) -> String {
        format!("parameter `{}` = {text:?}: expected {expected}", self.key)
    }

    /// A yes/no value: `true`/`false` (also `yes`/`no`, `1`/`0`).
    pub fn flag(&self, host: &dyn Lookups) -> Result<bool, String> {
        let text = self.text(host);
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(true),
            "false" | "no" | "0" => Ok(false),
            _ => Err(self.refuse(&text, "`true` or `false`")),
        }
    }

    /// A positive, finite number.
    pub fn positive(&self, host: &dyn Lookups) -> Result<f64, String> {
        let text = self.text(host);
        match text.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
            _ => Err(self.refuse(&text, "a positive number")),
        }
    }

    /// A whole number of at least `min`.
    pub fn count(&self, host: &dyn Lookups, min: i32) -> Result<i32, String> {
        let text = self.text(host);
        match text.trim().parse::<i32>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(self.refuse(&text, &format!("a whole number of at least {min}"))),
        }
    }
}

/// Runs `rules` in order on a passage and gathers one verdict.
///
/// A parameter error in any rule is the evaluation's error: the lane then falls back to manual
/// processing with the message, rather than deciding on a misconfigured criterion.
pub fn run(rules: &[Rule], passage: &Passage, host: &dyn Lookups) -> Result<Verdict, String> {
    let mut verdict = Verdict::default();
    for rule in rules {
        (rule.run)(passage, host, &mut verdict)?;
    }
    Ok(verdict)
}

/// A rule set's description: every code its rules record, every `check.<code>` parameter and
/// every other parameter they read, with defaults.
pub fn describe(name: &str, version: &str, rules: &[Rule]) -> RulesDescription {
    let mut rule_codes: Vec<String> = Vec::new();
    let mut checks: Vec<SettingSpec> = Vec::new();
    let mut others: Vec<SettingSpec> = Vec::new();
    for rule in rules {
        for code in rule.codes {
            if !rule_codes.iter().any(|c| c == code.code) {
                rule_codes.push(code.code.to_owned());
                checks.push(code.spec());
            }
        }
        for p in rule.parameters {
            if !others.iter().any(|s| s.key == p.key) {
                others.push(p.spec());
            }
        }
    }
    others.extend(checks);
    RulesDescription {
        name: name.to_owned(),
        version: version.to_owned(),
        rule_codes,
        parameters: others,
    }
}
