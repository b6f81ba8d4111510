//! Station (场站): the document's station or yard is registered, active and the one this gate
//! serves.

use crate::model::{Outcome, Passage, Verdict};
use crate::rules::Lookups;

use super::Code;
use super::documents::{in_play, list};

/// The document's station is registered and active.
pub const REGISTERED: Code = Code::new(
    "station.registered",
    Outcome::Inspect,
    "document's station registered and active",
);
/// The document's station is the lane's station.
pub const MATCH: Code = Code::new(
    "station.match",
    Outcome::Inspect,
    "document's station is the one this gate serves",
);

/// Records [`REGISTERED`] and [`MATCH`] once per station named by the passage's usable release
/// documents. Without documents nothing is recorded: the document check says why.
pub fn station(passage: &Passage, host: &dyn Lookups, verdict: &mut Verdict) -> Result<(), String> {
    let registered = REGISTERED.policy(host)?;
    let matches = MATCH.policy(host)?;
    if registered.is_none() && matches.is_none() {
        return Ok(());
    }
    // Station code → the documents naming it, in first-seen order.
    let mut stations: Vec<(String, Vec<String>)> = Vec::new();
    for d in in_play(passage, host)? {
        let code = d.station.trim().to_owned();
        match stations.iter_mut().find(|(s, _)| *s == code) {
            Some((_, docs)) => docs.push(d.number),
            None => stations.push((code, vec![d.number])),
        }
    }
    let lane = passage.lane.station.trim();
    for (code, docs) in stations {
        let docs = list(&docs);
        if code.is_empty() {
            let message = format!("release document {docs} names no station");
            if let Some(p) = registered {
                p.unknown(verdict, None, message);
            }
            continue;
        }
        if let Some(p) = registered {
            match host.station(&code) {
                Some(s) if s.active => p.pass(
                    verdict,
                    Some(&code),
                    format!("station {code} ({}) is registered and active", s.name),
                ),
                Some(s) => p.fail(
                    verdict,
                    Some(&code),
                    format!(
                        "station {code} ({}) named by {docs} is registered, but not active",
                        s.name
                    ),
                ),
                None => p.fail(
                    verdict,
                    Some(&code),
                    format!("station {code} named by {docs} is not registered"),
                ),
            }
        }
        if let Some(p) = matches {
            if lane.is_empty() {
                p.unknown(
                    verdict,
                    Some(&code),
                    format!("lane {} has no station configured", passage.lane.id),
                );
            } else if code == lane {
                p.pass(
                    verdict,
                    Some(&code),
                    format!("{docs} is for station {code}, the station of this gate"),
                );
            } else {
                p.fail(
                    verdict,
                    Some(&code),
                    format!("{docs} is for station {code}, but this gate serves station {lane}"),
                );
            }
        }
    }
    Ok(())
}
