//! Lane: each document's direction and cargo kind match the lane's settings (parameter library
//! items 2 and 3; the host fills the passage's lane from them).

use crate::model::{CargoKind, Direction, Outcome, Passage, Verdict};
use crate::rules::Lookups;

use super::Code;
use super::documents::{in_play, kind_label};

/// The document's direction (import/export) is the lane's.
pub const DIRECTION: Code = Code::new(
    "lane.direction",
    Outcome::Inspect,
    "document direction matches the lane's",
);
/// The document's cargo kind is one the lane serves (`any` on either side matches).
pub const CARGO: Code = Code::new(
    "lane.cargo",
    Outcome::Inspect,
    "document cargo kind matches the lane's",
);

fn direction_label(d: Direction) -> &'static str {
    match d {
        Direction::Import => "import",
        Direction::Export => "export",
    }
}

fn cargo_label(c: CargoKind) -> &'static str {
    match c {
        CargoKind::Container => "container",
        CargoKind::Bulk => "bulk",
        CargoKind::Any => "any",
    }
}

/// Records [`DIRECTION`] and [`CARGO`] for every usable release document of the passage.
pub fn lane(passage: &Passage, host: &dyn Lookups, verdict: &mut Verdict) -> Result<(), String> {
    let direction = DIRECTION.policy(host)?;
    let cargo = CARGO.policy(host)?;
    if direction.is_none() && cargo.is_none() {
        return Ok(());
    }
    let lane = &passage.lane;
    for d in in_play(passage, host)? {
        let doc = format!("{} {}", kind_label(d.kind), d.number);
        if let Some(p) = direction {
            let (want, got) = (
                direction_label(lane.direction),
                direction_label(d.direction),
            );
            if d.direction == lane.direction {
                p.pass(
                    verdict,
                    Some(&d.number),
                    format!("{doc} is for {got}, as lane {} is", lane.id),
                );
            } else {
                p.fail(
                    verdict,
                    Some(&d.number),
                    format!("{doc} is for {got}, but lane {} is an {want} lane", lane.id),
                );
            }
        }
        if let Some(p) = cargo {
            let (want, got) = (cargo_label(lane.cargo), cargo_label(d.cargo));
            let ok =
                d.cargo == lane.cargo || d.cargo == CargoKind::Any || lane.cargo == CargoKind::Any;
            if ok {
                p.pass(
                    verdict,
                    Some(&d.number),
                    format!("{doc} is for {got} cargo; lane {} takes {want}", lane.id),
                );
            } else {
                p.fail(
                    verdict,
                    Some(&d.number),
                    format!(
                        "{doc} is for {got} cargo, but lane {} takes {want} cargo only",
                        lane.id
                    ),
                );
            }
        }
    }
    Ok(())
}
