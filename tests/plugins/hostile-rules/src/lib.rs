//! A rules plugin that misbehaves on request (the passage id says how), so the tests can show
//! that the host contains each kind of fault to one call.

use std::sync::atomic::{AtomicU32, Ordering};

use kakou_plugin_sdk::prelude::*;

/// Evaluations this instance has run. A fresh instance for each evaluation keeps it at 1.
static EVALUATIONS: AtomicU32 = AtomicU32::new(0);

/// The misbehaving rule set.
pub struct Hostile;

impl Rules for Hostile {
    fn describe() -> RulesDescription {
        RulesDescription {
            name: "hostile-rules".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            rule_codes: vec!["hostile.ok".into()],
            parameters: vec![],
        }
    }

    fn evaluate(passage: &Passage, host: &dyn Lookups) -> Result<Verdict, String> {
        let evaluations = EVALUATIONS.fetch_add(1, Ordering::Relaxed) + 1;
        match passage.id.as_str() {
            "count" => {
                let mut v = Verdict::default();
                v.check(
                    Check::new("hostile.ok", CheckResult::Pass, evaluations.to_string()),
                    Outcome::Release,
                );
                Ok(v)
            }
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => panic!("hostile plugin panics on purpose"),
            "huge" => {
                let mut v = Verdict::default();
                for i in 0..2_000 {
                    v.check(
                        Check::new("hostile.ok", CheckResult::Pass, "x".repeat(1000))
                            .about(i.to_string()),
                        Outcome::Release,
                    );
                }
                Ok(v)
            }
            "sneak" => {
                // Control orders are not among this plugin's declared capabilities.
                let orders = host.control_orders(SubjectKind::Vehicle, "粤B12345");
                Err(format!(
                    "the host let an undeclared call through: {orders:?}"
                ))
            }
            "refuse" => Err("cannot decide: no data".into()),
            "clock" => {
                // Rules see the passage's time, never the host's clock.
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_err(|e| e.to_string())?;
                let mut v = Verdict::default();
                v.check(
                    Check::new("hostile.ok", CheckResult::Pass, now.as_millis().to_string()),
                    Outcome::Release,
                );
                Ok(v)
            }
            _ => {
                let mut v = Verdict::default();
                let p = host
                    .parameter("hostile.greeting")
                    .unwrap_or_else(|| "none".into());
                v.check(
                    Check::new("hostile.ok", CheckResult::Pass, p),
                    Outcome::Release,
                );
                Ok(v)
            }
        }
    }
}

kakou_plugin_sdk::export_rules!(Hostile);
