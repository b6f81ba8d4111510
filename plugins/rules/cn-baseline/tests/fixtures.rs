//! The plugin's fixtures evaluate natively to their expected verdicts.

mod support;

use std::path::Path;

use kakou_plugin_sdk::Rules;
use kakou_rules_cn_baseline::CnBaseline;

#[test]
fn fixtures_match_their_expected_verdicts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let n = support::check_all(&dir, |p, d| {
        CnBaseline::evaluate(p, &d.at(p.now_ms)).unwrap_or_else(|e| panic!("{e}"))
    });
    assert!(n >= 9, "only {n} fixtures");
}
