//! Container: number valid by its ISO 6346 check digit and covered by an open release document
//! of an accepted kind. On bulk lanes, the truck's cargo covered the same way.

use crate::model::{CargoKind, Document, DocumentKind, Outcome, Passage, ReadingValue, Verdict};
use crate::proto::{iso6346, plate};
use crate::rules::Lookups;

use super::documents::{self, accepted_kinds, kind_label, list, unusable};
use super::{Code, Policy};

/// The container number is well formed and its check digit matches.
pub const NUMBER: Code = Code::new(
    "container.number",
    Outcome::Inspect,
    "container number valid (ISO 6346 check digit)",
);
/// An open release document of an accepted kind covers the container.
pub const DOCUMENT: Code = Code::new(
    "container.document",
    Outcome::Inspect,
    "container covered by an open release document of an accepted kind",
);
/// A truck without containers (bulk cargo) is covered by an open release document of an
/// accepted kind that names it or was presented at the gate.
pub const BULK_DOCUMENT: Code = Code::new(
    "bulk.document",
    Outcome::Inspect,
    "bulk cargo covered by an open release document naming the vehicle or presented",
);

/// Records [`NUMBER`] and [`DOCUMENT`] for every container read; with no container read,
/// either a missing read (container lanes, or an `any` lane whose documents are for
/// containers) or [`BULK_DOCUMENT`] (bulk lanes).
pub fn container(
    passage: &Passage,
    host: &dyn Lookups,
    verdict: &mut Verdict,
) -> Result<(), String> {
    let number = NUMBER.policy(host)?;
    let document = DOCUMENT.policy(host)?;
    let accepted = accepted_kinds(host)?;
    let read = passage.containers();
    if read.is_empty() {
        return no_container(passage, host, verdict, number, document, &accepted);
    }
    for c in read {
        let text = iso6346::normalize(&c.number);
        match iso6346::validate(&text) {
            Ok(n) => {
                if let Some(p) = number {
                    p.pass(
                        verdict,
                        Some(n.as_str()),
                        format!(
                            "container number {n} is valid (check digit {})",
                            n.check_digit()
                        ),
                    );
                }
                if let Some(p) = document {
                    let docs = host.documents_by_container(n.as_str());
                    cover(p, verdict, n.as_str(), &docs, &accepted, "covers it");
                }
            }
            Err(e) => {
                if let Some(p) = number {
                    p.fail(
                        verdict,
                        Some(&text),
                        format!("container number {text:?} is not valid: {e}"),
                    );
                }
                // No document look-up on a number that cannot exist: the failure above already
                // stops the truck, and a near-miss match would only mislead.
            }
        }
    }
    Ok(())
}

fn no_container(
    passage: &Passage,
    host: &dyn Lookups,
    verdict: &mut Verdict,
    number: Option<Policy>,
    document: Option<Policy>,
    accepted: &[DocumentKind],
) -> Result<(), String> {
    let mut docs = documents::presented(passage, host);
    for d in documents::naming_vehicle(passage, host) {
        if !docs.iter().any(|x| x.number == d.number) {
            docs.push(d);
        }
    }
    let expects_containers = match passage.lane.cargo {
        CargoKind::Container => true,
        CargoKind::Bulk => false,
        CargoKind::Any => docs.iter().any(|d| d.cargo == CargoKind::Container),
    };
    if !expects_containers {
        if let Some(p) = BULK_DOCUMENT.policy(host)? {
            let subject = passage.plate().map(|p| plate::normalize(&p.text));
            let subject = subject.as_deref().unwrap_or("");
            cover(p, verdict, subject, &docs, accepted, "covers the truck");
        }
        return Ok(());
    }
    if let Some(p) = number {
        p.missing_read(verdict, passage, "container", &not_read(passage));
    }
    if let Some(p) = document {
        // Release on valid documents: a usable document presented or naming the truck covers
        // it until the container number is keyed in or backfilled.
        let usable: Vec<&Document> = docs
            .iter()
            .filter(|d| unusable(d, accepted).is_none())
            .collect();
        match usable.first() {
            Some(d) => p.pass(
                verdict,
                Some(&d.number),
                format!(
                    "no container number read; open {} {} was presented or names the truck",
                    kind_label(d.kind),
                    d.number
                ),
            ),
            None => p.unknown(
                verdict,
                None,
                "no container number read, and no open release document was presented or names the truck",
            ),
        }
    }
    Ok(())
}

/// Pass when one of `docs` is usable; fail saying why each one is not; unknown when there are
/// none at all.
///
/// No document is missing data rather than a mismatch: the release data may not have reached
/// the gate yet, and the operator downloads it or keys in its number (DOMAIN §2.7, document
/// download). A document that exists but cannot serve is a mismatch.
fn cover(
    policy: Policy,
    verdict: &mut Verdict,
    subject: &str,
    docs: &[Document],
    accepted: &[DocumentKind],
    what: &str,
) {
    let subject = (!subject.is_empty()).then_some(subject);
    if docs.is_empty() {
        policy.unknown(
            verdict,
            subject,
            "no release document was found: download it or key in its number",
        );
        return;
    }
    let usable: Vec<String> = docs
        .iter()
        .filter(|d| unusable(d, accepted).is_none())
        .map(|d| format!("{} {}", kind_label(d.kind), d.number))
        .collect();
    if usable.is_empty() {
        let reasons: Vec<String> = docs.iter().filter_map(|d| unusable(d, accepted)).collect();
        policy.fail(
            verdict,
            subject,
            format!("no usable release document: {}", reasons.join("; ")),
        );
    } else {
        policy.pass(verdict, subject, format!("open {} {what}", list(&usable)));
    }
}

/// Why no container number is in force: none was read, or what was read was refused (the
/// host keeps a number failing its check digit as a superseded read with a `misread`
/// attribute), naming the numbers and why, so an operator looks at the box rather than the
/// camera.
fn not_read(passage: &Passage) -> String {
    let refused: Vec<String> = passage
        .observations
        .iter()
        .filter(|o| o.superseded)
        .filter_map(|o| match &o.reading.value {
            ReadingValue::Container(c) => o
                .reading
                .attributes
                .iter()
                .find(|s| s.key == "misread")
                .map(|why| format!("{} ({})", c.number, why.value)),
            _ => None,
        })
        .collect();
    if refused.is_empty() {
        "no container number was read".to_owned()
    } else {
        format!(
            "no valid container number: read and refused {}",
            refused.join(", ")
        )
    }
}
