//! Fixture runner shared by the rules plugins' tests (included by path, so there is one copy):
//! every `fixtures/<stem>.passage.json` must evaluate natively to what `<stem>.expected.json`
//! says: the outcome and the multiset of (code, result) pairs, and (since `kakou plugin test`
//! compares them in order) in evaluation order. The same files drive `kakou plugin eval` and
//! `kakou plugin test` against the built component.

use std::path::{Path, PathBuf};

use kakou_plugin_sdk::harness::Dataset;
use kakou_plugin_sdk::model::{CheckResult, Outcome, Passage, Verdict};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    passage: Passage,
    #[serde(default)]
    data: Dataset,
}

#[derive(Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    outcome: Outcome,
    checks: Vec<Pair>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Pair {
    code: String,
    result: CheckResult,
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The verdict's (code, result) pairs, in evaluation order.
fn pairs(v: &Verdict) -> Vec<Pair> {
    v.checks
        .iter()
        .map(|c| Pair {
            code: c.code.clone(),
            result: c.result,
        })
        .collect()
}

fn sorted(v: &Verdict) -> Vec<Pair> {
    let mut pairs = pairs(v);
    pairs.sort();
    pairs
}

/// Runs every fixture in `dir` through `evaluate`; returns how many there were.
pub fn check_all(dir: &Path, evaluate: fn(&Passage, &Dataset) -> Verdict) -> usize {
    let mut stems: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixtures folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".passage.json"))
        .collect();
    stems.sort();
    for path in &stems {
        let name = path.to_string_lossy();
        let stem = name.trim_end_matches(".passage.json");
        let fixture: Fixture = read(path);
        let expected: Expected = read(Path::new(&format!("{stem}.expected.json")));
        let verdict = evaluate(&fixture.passage, &fixture.data);
        let mut want = expected.checks.clone();
        want.sort();
        assert_eq!(
            (verdict.outcome, sorted(&verdict)),
            (expected.outcome, want),
            "{stem}: {verdict:#?}"
        );
        // `kakou plugin test` compares checks in order: keep the files in evaluation order.
        assert_eq!(
            pairs(&verdict),
            expected.checks,
            "{stem}: same checks, another order"
        );
    }
    stems.len()
}
