//! Which release documents a passage relies on, and which of them are usable.

use crate::model::{Document, DocumentKind, DocumentStatus, Passage};
use crate::proto::iso6346;
use crate::rules::Lookups;

use super::Param;
use super::vehicle::VehicleId;

/// Parameter: the document kinds accepted as release cover (comma list).
pub const ACCEPTED: Param = Param {
    key: "container.accepted-documents",
    default: "transit-release,local-clearance,port-evacuation,bonded",
    doc: "release document kinds accepted as cover for containers and bulk cargo (comma list of transit-release, local-clearance, port-evacuation, bonded, customs-declaration, other)",
};

/// Every document kind, in the parameter library's spelling.
const KINDS: [(DocumentKind, &str); 6] = [
    (DocumentKind::TransitRelease, "transit-release"),
    (DocumentKind::LocalClearance, "local-clearance"),
    (DocumentKind::PortEvacuation, "port-evacuation"),
    (DocumentKind::Bonded, "bonded"),
    (DocumentKind::CustomsDeclaration, "customs-declaration"),
    (DocumentKind::Other, "other"),
];

/// The parameter-library name of a document kind (`transit-release`).
pub fn kind_name(kind: DocumentKind) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("other", |(_, n)| n)
}

/// A document kind as an officer says it ("transit release").
pub fn kind_label(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::TransitRelease => "transit release",
        DocumentKind::LocalClearance => "local clearance",
        DocumentKind::PortEvacuation => "port evacuation",
        DocumentKind::Bonded => "bonded-zone release",
        DocumentKind::CustomsDeclaration => "customs declaration",
        DocumentKind::Other => "document",
    }
}

fn status_label(status: DocumentStatus) -> &'static str {
    match status {
        DocumentStatus::Open => "open",
        DocumentStatus::Used => "already used",
        DocumentStatus::WrittenOff => "written off",
        DocumentStatus::Cancelled => "cancelled",
    }
}

/// The kinds accepted as release cover (parameter `container.accepted-documents`).
pub fn accepted_kinds(host: &dyn Lookups) -> Result<Vec<DocumentKind>, String> {
    let Some(text) = host.parameter(ACCEPTED.key) else {
        return parse_kinds(ACCEPTED.default);
    };
    parse_kinds(&text).map_err(|e| format!("parameter `{}` = {text:?}: {e}", ACCEPTED.key))
}

fn parse_kinds(text: &str) -> Result<Vec<DocumentKind>, String> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        // Accept the JSON spelling (`transit_release`) too: operators copy from both.
        let name = item.to_ascii_lowercase().replace('_', "-");
        match KINDS.iter().find(|(_, n)| *n == name) {
            Some((k, _)) => out.push(*k),
            None => return Err(format!("unknown document kind {item:?}")),
        }
    }
    Ok(out)
}

/// Why a document cannot serve as release cover, or `None` when it can (open, accepted kind).
pub fn unusable(doc: &Document, accepted: &[DocumentKind]) -> Option<String> {
    if !accepted.contains(&doc.kind) {
        return Some(format!(
            "{} is a {}, not an accepted release document",
            doc.number,
            kind_label(doc.kind)
        ));
    }
    (doc.status != DocumentStatus::Open).then(|| {
        format!(
            "{} {} is {}",
            kind_label(doc.kind),
            doc.number,
            status_label(doc.status)
        )
    })
}

/// Documents presented at the gate (card, scanner or operator), as the host knows them.
pub fn presented(passage: &Passage, host: &dyn Lookups) -> Vec<Document> {
    let mut docs: Vec<Document> = passage
        .documents()
        .filter_map(|r| host.document(r.number.trim()))
        .collect();
    dedup(&mut docs);
    docs
}

/// Documents naming the truck: by the registered vehicle's plate, else by the plate read.
pub fn naming_vehicle(passage: &Passage, host: &dyn Lookups) -> Vec<Document> {
    let id = VehicleId::read(passage, host);
    let plate = id.vehicle().map(|v| v.plate.clone()).or(id.plate);
    plate.map_or_else(Vec::new, |p| host.documents_by_vehicle(&p))
}

/// Every release document a passage relies on, usable or not: those covering the containers
/// read; when none do, those naming the vehicle; and those presented at the gate. Each once,
/// in that order.
pub fn related(passage: &Passage, host: &dyn Lookups) -> Vec<Document> {
    let mut docs: Vec<Document> = Vec::new();
    for c in passage.containers() {
        docs.extend(host.documents_by_container(&iso6346::normalize(&c.number)));
    }
    if docs.is_empty() {
        docs.extend(naming_vehicle(passage, host));
    }
    docs.extend(presented(passage, host));
    dedup(&mut docs);
    docs
}

/// The usable release documents of a passage (open, of an accepted kind): the ones station,
/// lane and transit checks look at.
pub fn in_play(passage: &Passage, host: &dyn Lookups) -> Result<Vec<Document>, String> {
    let accepted = accepted_kinds(host)?;
    let mut docs = related(passage, host);
    docs.retain(|d| unusable(d, &accepted).is_none());
    Ok(docs)
}

/// Keeps the first document of each number.
fn dedup(docs: &mut Vec<Document>) {
    let mut seen: Vec<String> = Vec::new();
    docs.retain(|d| {
        if seen.contains(&d.number) {
            false
        } else {
            seen.push(d.number.clone());
            true
        }
    });
}

/// `A, B and C`-style list for messages.
pub(crate) fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_in_both_spellings() {
        assert_eq!(
            parse_kinds(" transit-release, bonded ,customs_declaration"),
            Ok(vec![
                DocumentKind::TransitRelease,
                DocumentKind::Bonded,
                DocumentKind::CustomsDeclaration
            ])
        );
        assert_eq!(
            parse_kinds("transit-release,manifest"),
            Err("unknown document kind \"manifest\"".into())
        );
        for (k, n) in KINDS {
            assert_eq!(kind_name(k), n);
        }
    }

    #[test]
    fn lists_read_like_sentences() {
        let s = |v: &[&str]| list(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(s(&[]), "");
        assert_eq!(s(&["a"]), "a");
        assert_eq!(s(&["a", "b", "c"]), "a, b and c");
    }
}
