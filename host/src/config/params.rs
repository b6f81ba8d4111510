//! The parameter catalogue (参数库): every parameter a site may set, with its type and range,
//! declared by what reads it.
//!
//! A region rule set file declares the parameters of its rules plugins (see [`super::region`]);
//! the lanes declare the `lane.<id>.*` settings the lane engine reads, one set per lane id of
//! the site manifest ([`crate::lane::lane_parameters`]). Every value is checked against its
//! declaration once, when it is set (`kakou param set`, the `parameter` topic, the platform
//! feed when the daemon gives the store the catalogue), and stored in its canonical
//! spelling. The alternative, finding out at decision time, costs every truck from then on a
//! manual decision with `rules.failed`, and a misspelt name nobody reads would look applied.
//!
//! The catalogue lives in `config` because its entries come from the files this module reads
//! (region rule sets, the site manifest's lanes), and because it is used by several modules
//! that must not depend on each other for it: the lanes' site actions, the store's platform
//! import, and the CLI, which checks before it sends.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// How a parameter's value is spelled, and its bounds.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamType {
    /// A whole number (`i64`), within the bounds.
    Integer(Range),
    /// A decimal number (`2.5`, no exponent), within the bounds.
    Decimal(Range),
    /// A duration in hours: a number, optionally with a unit (`36`, `36h`, `1.5d`, `90min`);
    /// stored as the number of hours.
    Hours(Range),
    /// `true` or `false` (also `yes`/`no`, `on`/`off`, `1`/`0`); stored as `true` or `false`.
    Boolean,
    /// One of the listed values (case and `_` for `-` do not matter); stored as listed.
    Enumeration(Vec<String>),
    /// Comma-separated items, each from `values` when it is not empty; stored without spaces,
    /// each item once.
    List {
        /// The items allowed; empty: any item.
        values: Vec<String>,
        /// Fewest items.
        min_items: usize,
        /// Most items.
        max_items: Option<usize>,
    },
    /// Any text that is not empty (a parameter whose type nothing declares).
    Text,
}

impl ParamType {
    /// The name used in region files: `integer`, `decimal`, ….
    pub fn name(&self) -> &'static str {
        match self {
            ParamType::Integer(_) => "integer",
            ParamType::Decimal(_) => "decimal",
            ParamType::Hours(_) => "hours",
            ParamType::Boolean => "boolean",
            ParamType::Enumeration(_) => "enumeration",
            ParamType::List { .. } => "list",
            ParamType::Text => "text",
        }
    }

    /// Every type name, for messages.
    pub const NAMES: &'static str = "integer, decimal, hours, boolean, enumeration, list or text";
}

/// Inclusive bounds of a number; either may be absent.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Range {
    /// Smallest value allowed.
    pub min: Option<f64>,
    /// Largest value allowed.
    pub max: Option<f64>,
}

impl Range {
    fn contains(&self, n: f64) -> bool {
        self.min.is_none_or(|m| n >= m) && self.max.is_none_or(|m| n <= m)
    }

    /// ` from 0 to 100 %`, ` of at least 1 h`, or nothing.
    fn describe(&self, unit: Option<&str>) -> String {
        let u = unit.map(|u| format!(" {u}")).unwrap_or_default();
        match (self.min, self.max) {
            (Some(a), Some(b)) => format!(" from {a} to {b}{u}"),
            (Some(a), None) => format!(" of at least {a}{u}"),
            (None, Some(b)) => format!(" of at most {b}{u}"),
            (None, None) => unit.map(|u| format!(", in {u}")).unwrap_or_default(),
        }
    }
}

/// Who declared a parameter: the reader it belongs to, named in every error about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeclaredBy {
    /// A region rule set file, for its rules plugins.
    RuleSet {
        /// `name@version`.
        id: String,
        /// The file.
        path: PathBuf,
    },
    /// The lane engine, for one lane of the site manifest.
    Lane(String),
}

impl fmt::Display for DeclaredBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeclaredBy::RuleSet { id, path } => {
                write!(f, "rule set {id} ({})", path.display())
            }
            DeclaredBy::Lane(id) => write!(f, "lane {id} of the site manifest"),
        }
    }
}

/// One parameter a site may set.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterSpec {
    /// Its name, e.g. `weight.tolerance-percent`.
    pub name: String,
    /// How its value is spelled, and the bounds.
    pub kind: ParamType,
    /// Unit of a number, for messages (`%`, `kg`).
    pub unit: Option<String>,
    /// The value used when the site sets none (already in canonical form).
    pub default: Option<String>,
    /// What it does.
    pub doc: String,
    /// Who reads it.
    pub declared_by: DeclaredBy,
    /// `false` when the type was inferred from a bare default (`"name" = "value"`), not
    /// declared.
    pub declared: bool,
}

impl ParameterSpec {
    /// A declared parameter with no default, doc or unit.
    pub fn new(name: impl Into<String>, kind: ParamType, declared_by: DeclaredBy) -> Self {
        ParameterSpec {
            name: name.into(),
            kind,
            unit: None,
            default: None,
            doc: String::new(),
            declared_by,
            declared: true,
        }
    }

    /// With a description.
    pub fn doc(mut self, doc: impl Into<String>) -> Self {
        self.doc = doc.into();
        self
    }

    /// What an error says was expected.
    pub fn expected(&self) -> Box<Expected> {
        Box::new(Expected {
            kind: self.kind.clone(),
            unit: self.unit.clone(),
            default: self.default.clone(),
            declared_by: self.declared_by.clone(),
        })
    }

    /// Checks a value against the declaration and returns its canonical spelling.
    pub fn check(&self, value: &str) -> Result<String, ParameterError> {
        let text = value.trim();
        let invalid = |problem: Problem| ParameterError::Invalid {
            name: self.name.clone(),
            value: value.to_owned(),
            problem,
            expected: self.expected(),
        };
        if text.is_empty() && !matches!(self.kind, ParamType::List { .. }) {
            return Err(ParameterError::Empty {
                name: self.name.clone(),
                expected: self.expected(),
            });
        }
        let in_range = |n: f64, range: &Range, canonical: String| {
            if range.contains(n) {
                Ok(canonical)
            } else {
                Err(invalid(Problem::OutOfRange))
            }
        };
        match &self.kind {
            ParamType::Integer(range) => {
                let n: i64 = text
                    .strip_prefix('+')
                    .unwrap_or(text)
                    .parse()
                    .map_err(|_| invalid(Problem::NotInteger))?;
                in_range(n as f64, range, n.to_string())
            }
            ParamType::Decimal(range) => {
                let n = decimal(text).ok_or_else(|| invalid(Problem::NotDecimal))?;
                in_range(n, range, n.to_string())
            }
            ParamType::Hours(range) => {
                let n = hours(text).ok_or_else(|| invalid(Problem::NotHours))?;
                in_range(n, range, n.to_string())
            }
            ParamType::Boolean => match text.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok("true".into()),
                "false" | "no" | "off" | "0" => Ok("false".into()),
                _ => Err(invalid(Problem::NotBoolean)),
            },
            ParamType::Enumeration(values) => {
                find(values, text).ok_or_else(|| invalid(Problem::NotListed))
            }
            ParamType::List {
                values,
                min_items,
                max_items,
            } => {
                let mut items: Vec<String> = Vec::new();
                for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let item = if values.is_empty() {
                        item.to_owned()
                    } else {
                        find(values, item)
                            .ok_or_else(|| invalid(Problem::ItemNotListed(item.to_owned())))?
                    };
                    if !items.contains(&item) {
                        items.push(item);
                    }
                }
                if items.len() < *min_items || max_items.is_some_and(|m| items.len() > m) {
                    return Err(invalid(Problem::ItemCount(items.len())));
                }
                Ok(items.join(","))
            }
            ParamType::Text => Ok(text.to_owned()),
        }
    }
}

/// A value as the store keeps it: the declared name and the canonical spelling (`on` →
/// `true`, `2.50` → `2.5`, `36h` → `36`, `Inspect` → `inspect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalised {
    /// The parameter's name as declared.
    pub name: String,
    /// The canonical value.
    pub value: String,
}

/// What a parameter expects, as an error states it.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    kind: ParamType,
    unit: Option<String>,
    default: Option<String>,
    declared_by: DeclaredBy,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = self.unit.as_deref();
        match &self.kind {
            ParamType::Integer(r) => write!(f, "a whole number{}", r.describe(unit))?,
            ParamType::Decimal(r) => write!(f, "a decimal number{}", r.describe(unit))?,
            ParamType::Hours(r) => write!(
                f,
                "a number of hours, optionally with a unit (36, 36h, 1.5d, 90min){}",
                r.describe(Some("h"))
            )?,
            ParamType::Boolean => f.write_str("true or false")?,
            ParamType::Enumeration(values) => write!(f, "one of {}", values.join(", "))?,
            ParamType::List {
                values,
                min_items,
                max_items,
            } => {
                f.write_str("a comma-separated list")?;
                if !values.is_empty() {
                    write!(f, " of {}", values.join(", "))?;
                }
                match (*min_items, max_items) {
                    (0, None) => {}
                    (n, None) => write!(f, ", at least {n} item(s)")?,
                    (0, Some(m)) => write!(f, ", at most {m} item(s)")?,
                    (n, Some(m)) => write!(f, ", {n} to {m} item(s)")?,
                }
            }
            ParamType::Text => f.write_str("any text")?,
        }
        if let Some(d) = &self.default {
            write!(f, " (default {d:?}")?;
        } else {
            f.write_str(" (")?;
        }
        let sep = if self.default.is_some() { "; " } else { "" };
        write!(f, "{sep}declared by {})", self.declared_by)
    }
}

/// What is wrong with a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Not a whole number.
    NotInteger,
    /// Not a decimal number.
    NotDecimal,
    /// Not a number of hours.
    NotHours,
    /// Not a yes/no value.
    NotBoolean,
    /// A number outside the bounds.
    OutOfRange,
    /// Not one of the listed values.
    NotListed,
    /// A list item that is not one of the listed values.
    ItemNotListed(String),
    /// Too few or too many items (the count found).
    ItemCount(usize),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotInteger => f.write_str("not a whole number"),
            Problem::NotDecimal => f.write_str("not a decimal number"),
            Problem::NotHours => f.write_str("not a number of hours"),
            Problem::NotBoolean => f.write_str("not true or false"),
            Problem::OutOfRange => f.write_str("out of range"),
            Problem::NotListed => f.write_str("not one of its values"),
            Problem::ItemNotListed(item) => write!(f, "item {item:?} is not one of its values"),
            Problem::ItemCount(n) => write!(f, "{n} item(s)"),
        }
    }
}

/// Why a parameter value is refused. Nothing is written when it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParameterError {
    /// No reader on this site declares the name.
    #[error(
        "unknown parameter `{name}`{}: nothing on this site reads it. The parameters a site may \
         set are declared by {known_from}; check the spelling",
        did_you_mean(suggestions)
    )]
    Unknown {
        /// The name given.
        name: String,
        /// The closest declared names, closest first (at most three).
        suggestions: Vec<String>,
        /// Who declares the site's parameters, for the message.
        known_from: String,
    },
    /// An empty value (there is no "unset": give the value wanted, the default if need be).
    #[error("parameter `{name}` is empty: expected {expected}")]
    Empty {
        /// The parameter.
        name: String,
        /// What it takes (boxed: errors stay small on the happy path).
        expected: Box<Expected>,
    },
    /// A value of the wrong type, out of range, or not among the listed values.
    #[error("parameter `{name}` = {value:?}: {problem}; expected {expected}")]
    Invalid {
        /// The parameter.
        name: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        problem: Problem,
        /// What it takes (boxed: errors stay small on the happy path).
        expected: Box<Expected>,
    },
}

impl ParameterError {
    /// The record field at fault: `name` for an unknown parameter, else `value`.
    pub fn field(&self) -> &'static str {
        match self {
            ParameterError::Unknown { .. } => "name",
            _ => "value",
        }
    }
}

fn did_you_mean(suggestions: &[String]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!(" (did you mean `{one}`?)"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|s| format!("`{s}`")).collect();
            format!(" (did you mean {} or `{last}`?)", init.join(", "))
        }
    }
}

/// Every parameter a site may set: its rule set's and its lanes'.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParameterCatalog {
    specs: BTreeMap<String, ParameterSpec>,
}

impl ParameterCatalog {
    /// An empty catalogue (every name is unknown).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a declaration; a later one of the same name replaces the earlier.
    pub fn declare(&mut self, spec: ParameterSpec) {
        self.specs.insert(spec.name.clone(), spec);
    }

    /// The declaration of `name`.
    pub fn get(&self, name: &str) -> Option<&ParameterSpec> {
        self.specs.get(name.trim())
    }

    /// Every declaration, by name.
    pub fn specs(&self) -> impl Iterator<Item = &ParameterSpec> {
        self.specs.values()
    }

    /// Checks a parameter value and returns it as the store keeps it.
    pub fn validate(&self, name: &str, value: &str) -> Result<Normalised, ParameterError> {
        let Some(spec) = self.get(name) else {
            return Err(ParameterError::Unknown {
                name: name.trim().to_owned(),
                suggestions: self.suggestions(name.trim()),
                known_from: self.known_from(),
            });
        };
        Ok(Normalised {
            name: spec.name.clone(),
            value: spec.check(value)?,
        })
    }

    /// Declared names close to `name`: a few typing slips away, or sharing most of its words
    /// (`check.driver-card-required` → `check.driver.card`), closest first; when some are at
    /// most two slips away, only those.
    pub fn suggestions(&self, name: &str) -> Vec<String> {
        let wanted = name.to_ascii_lowercase();
        let words = words_of(&wanted);
        let mut scored: Vec<(usize, &str)> = self
            .specs
            .keys()
            .filter_map(|k| {
                let d = distance(&wanted, &k.to_ascii_lowercase());
                let theirs = words_of(k);
                let shared = words.iter().filter(|w| theirs.contains(w)).count();
                let all = words.len() + theirs.len() - shared;
                let close = d <= 2 || d * 4 <= wanted.chars().count();
                let similar = all > 0 && shared * 2 >= all;
                (close || similar).then_some((d, k.as_str()))
            })
            .collect();
        scored.sort();
        // A name a typing slip away is what was meant: the word-sharing ones only add noise.
        if scored.first().is_some_and(|(d, _)| *d <= 2) {
            scored.retain(|(d, _)| *d <= 2);
        }
        scored
            .into_iter()
            .take(3)
            .map(|(_, k)| k.to_owned())
            .collect()
    }

    /// Who declares the parameters here, for an unknown name's message.
    fn known_from(&self) -> String {
        let mut rulesets: Vec<String> = Vec::new();
        let mut lanes: Vec<&str> = Vec::new();
        for s in self.specs.values() {
            match &s.declared_by {
                DeclaredBy::RuleSet { .. } => {
                    let d = s.declared_by.to_string();
                    if !rulesets.contains(&d) {
                        rulesets.push(d);
                    }
                }
                DeclaredBy::Lane(id) => {
                    if !lanes.contains(&id.as_str()) {
                        lanes.push(id);
                    }
                }
            }
        }
        let mut parts = rulesets;
        if !lanes.is_empty() {
            parts.push(format!("the lanes {} (lane.<id>.*)", lanes.join(", ")));
        }
        if parts.is_empty() {
            "nothing: no rule set is loaded".into()
        } else {
            parts.join(" and ")
        }
    }
}

fn words_of(name: &str) -> Vec<String> {
    name.to_ascii_lowercase()
        .split(['.', '-', '_'])
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Edit distance (insertions, deletions, substitutions) between two names.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = here;
        }
    }
    row[b.len()]
}

/// The listed value `text` names: case and `_` for `-` do not matter.
fn find(values: &[String], text: &str) -> Option<String> {
    let key = |s: &str| s.trim().to_ascii_lowercase().replace('_', "-");
    let k = key(text);
    values.iter().find(|v| key(v) == k).cloned()
}

/// A plain decimal number: an optional sign, digits, at most one `.`. No exponent, no `inf`:
/// what an operator types, and what every reader parses the same way.
pub fn decimal(text: &str) -> Option<f64> {
    let t = text.trim();
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    let mut dots = 0;
    let mut any = false;
    for c in digits.chars() {
        match c {
            '0'..='9' => any = true,
            '.' => dots += 1,
            _ => return None,
        }
    }
    if !any || dots > 1 {
        return None;
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A number of hours with an optional unit: `36`, `36 h`, `1.5d`, `90min`.
fn hours(text: &str) -> Option<f64> {
    let t = text.trim();
    let split = t.find(|c: char| c.is_alphabetic()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n = decimal(number)?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "h" | "hr" | "hrs" | "hour" | "hours" => 1.0,
        "d" | "day" | "days" => 24.0,
        "min" | "mins" | "minute" | "minutes" => 1.0 / 60.0,
        _ => return None,
    };
    Some(n * factor)
}

// ---------------------------------------------------------------------------------------------
// Declarations in region files.

/// A parameter declaration as a region file writes it:
/// `{ default = "3", type = "decimal", min = 0, max = 100, unit = "%", doc = "…" }`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawDeclaration {
    default: toml::Value,
    #[serde(rename = "type")]
    kind: String,
    min: Option<f64>,
    max: Option<f64>,
    unit: Option<String>,
    values: Option<Vec<String>>,
    min_items: Option<usize>,
    max_items: Option<usize>,
    doc: Option<String>,
}

/// Why a declaration is wrong (the region loader adds file and line).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeclarationError {
    /// An unknown `type`.
    #[error("type {0:?}: expected {names}", names = ParamType::NAMES)]
    UnknownType(String),
    /// A key that does not apply to the type.
    #[error("`{key}` does not apply to type {kind}")]
    NotForType {
        /// The key.
        key: &'static str,
        /// The type.
        kind: &'static str,
    },
    /// An enumeration without values, or a value given twice or containing a comma.
    #[error("`values`: {0}")]
    Values(&'static str),
    /// `min` above `max`.
    #[error("`min` {min} is above `max` {max}")]
    Bounds {
        /// Smallest allowed.
        min: f64,
        /// Largest allowed.
        max: f64,
    },
    /// The default is not a string, number or boolean.
    #[error("`default`: expected a string, number or boolean")]
    DefaultType,
    /// The default does not satisfy the declaration.
    #[error("`default` does not fit the declaration: {0}")]
    Default(#[source] Box<ParameterError>),
}

impl RawDeclaration {
    /// The declaration of `name`, by `declared_by`.
    pub(crate) fn into_spec(
        self,
        name: &str,
        declared_by: DeclaredBy,
    ) -> Result<ParameterSpec, DeclarationError> {
        let range = Range {
            min: self.min,
            max: self.max,
        };
        if let (Some(min), Some(max)) = (self.min, self.max)
            && min > max
        {
            return Err(DeclarationError::Bounds { min, max });
        }
        let values = self.values.unwrap_or_default();
        let kind = match self.kind.trim().to_ascii_lowercase().as_str() {
            "integer" => ParamType::Integer(range),
            "decimal" => ParamType::Decimal(range),
            "hours" => ParamType::Hours(range),
            "boolean" => ParamType::Boolean,
            "enumeration" if values.is_empty() => {
                return Err(DeclarationError::Values(
                    "an enumeration lists the values it takes",
                ));
            }
            "enumeration" => ParamType::Enumeration(values.clone()),
            "list" => ParamType::List {
                values: values.clone(),
                min_items: self.min_items.unwrap_or(0),
                max_items: self.max_items,
            },
            "text" => ParamType::Text,
            _ => return Err(DeclarationError::UnknownType(self.kind)),
        };
        let not_for = |key: &'static str| DeclarationError::NotForType {
            key,
            kind: kind.name(),
        };
        let numeric = matches!(
            kind,
            ParamType::Integer(_) | ParamType::Decimal(_) | ParamType::Hours(_)
        );
        let is_list = matches!(kind, ParamType::List { .. });
        if !numeric && self.min.is_some() {
            return Err(not_for("min"));
        }
        if !numeric && self.max.is_some() {
            return Err(not_for("max"));
        }
        // Hours carry their unit in the type.
        if self.unit.is_some() && !matches!(kind, ParamType::Integer(_) | ParamType::Decimal(_)) {
            return Err(not_for("unit"));
        }
        if !values.is_empty() && !matches!(kind, ParamType::Enumeration(_)) && !is_list {
            return Err(not_for("values"));
        }
        if !is_list && self.min_items.is_some() {
            return Err(not_for("min-items"));
        }
        if !is_list && self.max_items.is_some() {
            return Err(not_for("max-items"));
        }
        let mut seen: Vec<String> = Vec::new();
        for v in &values {
            let k = v.trim().to_ascii_lowercase().replace('_', "-");
            if k.is_empty() || k.contains(',') {
                return Err(DeclarationError::Values(
                    "a value is empty or contains a comma",
                ));
            }
            if seen.contains(&k) {
                return Err(DeclarationError::Values("a value is listed twice"));
            }
            seen.push(k);
        }
        let default =
            crate::diag::scalar_text(&self.default).ok_or(DeclarationError::DefaultType)?;
        let mut spec = ParameterSpec::new(name, kind, declared_by);
        spec.unit = self.unit;
        spec.doc = self.doc.unwrap_or_default();
        let default = spec
            .check(&default)
            .map_err(|e| DeclarationError::Default(Box::new(e)))?;
        spec.default = Some(default);
        Ok(spec)
    }
}

/// The declaration a bare default (`"name" = "value"`) stands for: the loosest type its value
/// allows (a boolean, a decimal number, else text), so a site can still not set
/// `weight.tolerance-percent = two` where the file gave `"3"`. Region files should declare
/// their parameters; this keeps files written before declarations existed loading.
pub(crate) fn inferred(name: &str, default: &str, declared_by: DeclaredBy) -> ParameterSpec {
    let t = default.trim();
    let kind = if matches!(t, "true" | "false") {
        ParamType::Boolean
    } else if decimal(t).is_some() {
        ParamType::Decimal(Range::default())
    } else {
        ParamType::Text
    };
    let mut spec = ParameterSpec::new(name, kind, declared_by);
    spec.default = Some(default.to_owned());
    spec.declared = false;
    spec
}

#[cfg(test)]
#[path = "params_tests.rs"]
mod tests;
