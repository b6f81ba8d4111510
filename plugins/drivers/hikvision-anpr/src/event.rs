//! The `EventNotificationAlert` XML: finding its character encoding, and reading it into a
//! flat list of element paths and their text.

use encoding_rs::{Encoding, GBK, UTF_8};
use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// XML text decoded from bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    /// The document as UTF-8.
    pub text: String,
    /// The encoding used, e.g. `UTF-8`, `GBK`, or `GBK (declared UTF-8)` after a fallback.
    pub encoding: String,
}

/// The `encoding` pseudo-attribute of an XML declaration at the start of `bytes`.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
    let decl = bytes[start..].strip_prefix(b"<?xml")?;
    let end = decl.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&decl[..end]).ok()?;
    let after = &decl[decl.find("encoding")? + "encoding".len()..];
    let after = after.trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &after[1..];
    Some(value[..value.find(quote)?].to_owned())
}

/// Characters that Chinese event text is made of, besides ASCII.
fn is_cjk_text(c: char) -> bool {
    matches!(u32::from(c),
        0x00B7 | 0x2022 | 0x3000..=0x303F | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xFF00..=0xFFEF)
}

/// Whether `bytes` read as UTF-8 is Chinese text: valid, with at least one non-ASCII
/// character, all of them CJK. GBK text almost never passes (its two-byte codes rarely form
/// valid three-byte UTF-8 sequences throughout), so this catches UTF-8 that is declared GBK.
fn plainly_utf8(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|text| {
        let mut wide = text.chars().filter(|c| !c.is_ascii()).peekable();
        wide.peek().is_some() && wide.all(is_cjk_text)
    })
}

/// Decodes the XML bytes. The candidates, in order: the `charset` of the part's (or request's)
/// `Content-Type`, the encoding the XML declaration names, UTF-8, GBK. The first that decodes
/// without a malformed sequence wins, except that bytes declared in another encoding that are
/// plainly UTF-8 Chinese text are read as UTF-8 (GBK decoding accepts many UTF-8 sequences
/// and would garble them). A fallback is noted in [`Decoded::encoding`].
pub(crate) fn decode_xml_bytes(bytes: &[u8], charset: Option<&str>) -> Result<Decoded, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let declared_label = charset
        .map(str::to_owned)
        .or_else(|| declared_encoding(bytes));
    let declared = declared_label
        .as_deref()
        .and_then(|l| Encoding::for_label(l.trim().as_bytes()));
    let mut candidates: Vec<&'static Encoding> = Vec::new();
    if declared.is_some_and(|d| d != UTF_8) && plainly_utf8(bytes) {
        candidates.push(UTF_8);
    }
    for enc in [declared, Some(UTF_8), Some(GBK)].into_iter().flatten() {
        if !candidates.contains(&enc) {
            candidates.push(enc);
        }
    }
    for enc in candidates {
        if let Some(text) = enc.decode_without_bom_handling_and_without_replacement(bytes) {
            let mut encoding = enc.name().to_owned();
            match (&declared_label, declared) {
                (Some(label), Some(d)) if d != enc => {
                    encoding = format!("{encoding} (declared {label})");
                }
                (Some(label), None) => {
                    encoding = format!("{encoding} (declared unknown {label})");
                }
                _ => {}
            }
            return Ok(Decoded {
                text: text.into_owned(),
                encoding,
            });
        }
    }
    Err(format!(
        "XML is not valid in its declared encoding ({}), UTF-8 or GBK",
        declared_label.as_deref().unwrap_or("none")
    ))
}

/// An alert read into `(path, text)` pairs: the path is the chain of element local names below
/// the root (`ANPR/licensePlate`), the text is trimmed and entity-resolved; elements with only
/// whitespace are left out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Alert {
    fields: Vec<(String, String)>,
    /// Paths of every element seen, text or not.
    elements: Vec<String>,
}

fn entity(name: &str) -> Option<char> {
    Some(match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => return None,
    })
}

impl Alert {
    /// Parses a document whose root must be `EventNotificationAlert`.
    pub(crate) fn parse(xml: &str) -> Result<Alert, String> {
        let mut reader = Reader::from_str(xml.trim_start());
        let mut stack: Vec<String> = Vec::new();
        let mut text = String::new();
        let mut alert = Alert::default();
        let mut seen_root = false;
        let xml_error = |reader: &Reader<&[u8]>, e: &dyn std::fmt::Display| {
            format!("malformed XML at byte {}: {e}", reader.error_position())
        };
        loop {
            let event = reader.read_event().map_err(|e| xml_error(&reader, &e))?;
            let empty = matches!(event, Event::Empty(_));
            match event {
                Event::Start(e) | Event::Empty(e) => {
                    let name = e.local_name().into_inner().to_owned();
                    if stack.is_empty() {
                        if seen_root {
                            return Err("more than one root element".into());
                        }
                        seen_root = true;
                        if name != "EventNotificationAlert" {
                            return Err(format!(
                                "root element is <{name}>, expected <EventNotificationAlert>"
                            ));
                        }
                    }
                    stack.push(name);
                    alert.elements.push(stack[1..].join("/"));
                    text.clear();
                    if empty {
                        stack.pop();
                    }
                }
                Event::Text(t) => text.push_str(&t.xml10_content()),
                Event::CData(c) => text.push_str(&c.xml10_content()),
                Event::GeneralRef(r) => {
                    let c = match r.resolve_char_ref() {
                        Ok(Some(c)) => c,
                        Ok(None) => {
                            entity(&r).ok_or_else(|| format!("unknown entity &{};", &*r))?
                        }
                        Err(e) => return Err(xml_error(&reader, &e)),
                    };
                    text.push(c);
                }
                Event::End(_) => {
                    let trimmed = text.trim();
                    if !trimmed.is_empty() && stack.len() > 1 {
                        alert
                            .fields
                            .push((stack[1..].join("/"), trimmed.to_owned()));
                    }
                    text.clear();
                    stack.pop();
                }
                Event::Eof => {
                    if let Some(open) = stack.last() {
                        return Err(format!("XML ends inside <{open}>"));
                    }
                    break;
                }
                _ => {}
            }
        }
        if !seen_root {
            return Err("no XML element in the event".into());
        }
        Ok(alert)
    }

    /// The text of the first element at `path`.
    pub(crate) fn get(&self, path: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, v)| v.as_str())
    }

    /// Whether an element exists at `path` (with or without text).
    pub(crate) fn has(&self, path: &str) -> bool {
        self.elements.iter().any(|p| p == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declaration_encoding() {
        assert_eq!(
            declared_encoding(b"<?xml version=\"1.0\" encoding=\"GBK\"?><a/>").as_deref(),
            Some("GBK")
        );
        assert_eq!(
            declared_encoding(b"\xEF\xBB\xBF \r\n<?xml version='1.0' encoding = 'gb2312' ?>")
                .as_deref(),
            Some("gb2312")
        );
        assert_eq!(declared_encoding(b"<?xml version=\"1.0\"?><a/>"), None);
        assert_eq!(declared_encoding(b"<a/>"), None);
    }

    #[test]
    fn charset_precedence_and_fallback() {
        let gbk = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><x>\xD4\xC1B12345</x>";
        let d = decode_xml_bytes(gbk, None).unwrap();
        assert!(d.text.contains("粤B12345"));
        assert_eq!(d.encoding, "GBK (declared UTF-8)");
        let d = decode_xml_bytes(gbk, Some("gb2312")).unwrap();
        assert_eq!(d.encoding, "GBK");
        let utf8 = "<?xml version=\"1.0\" encoding=\"GBK\"?><x>粤B12345</x>";
        // Declared GBK, but the bytes are UTF-8 (malformed as GBK): UTF-8 wins.
        let d = decode_xml_bytes(utf8.as_bytes(), None).unwrap();
        assert!(d.text.contains("粤B12345"));
        assert_eq!(d.encoding, "UTF-8 (declared GBK)");
        // GBK that happens to be valid UTF-8 (豫 is D4 A5, U+0525 in UTF-8) stays GBK.
        let henan = b"<?xml version=\"1.0\" encoding=\"GBK\"?><x>\xD4\xA5A12345</x>";
        assert!(std::str::from_utf8(henan).is_ok());
        let d = decode_xml_bytes(henan, None).unwrap();
        assert!(d.text.contains("豫A12345"), "{}", d.text);
        assert_eq!(d.encoding, "GBK");
        let d = decode_xml_bytes(b"<x>a</x>", Some("x-klingon")).unwrap();
        assert_eq!(d.encoding, "UTF-8 (declared unknown x-klingon)");
        assert!(
            decode_xml_bytes(b"<x>\xFF\xFF</x>", None)
                .unwrap_err()
                .contains("not valid")
        );
    }

    #[test]
    fn paths_entities_and_errors() {
        let xml = "<?xml version=\"1.0\"?>\n<EventNotificationAlert xmlns=\"urn:x\">\
                   <eventType>ANPR</eventType><ANPR><licensePlate> A&amp;B&#x7CA4; </licensePlate>\
                   <empty/><c><![CDATA[<raw>]]></c></ANPR></EventNotificationAlert>";
        let a = Alert::parse(xml).unwrap();
        assert_eq!(a.get("eventType"), Some("ANPR"));
        assert_eq!(a.get("ANPR/licensePlate"), Some("A&B粤"));
        assert_eq!(a.get("ANPR/c"), Some("<raw>"));
        assert!(a.has("ANPR"));
        assert!(a.has("ANPR/empty"));
        assert_eq!(a.get("ANPR/empty"), None);
        let prefixed = "<isapi:EventNotificationAlert xmlns:isapi=\"urn:x\">\
                        <isapi:eventType>videoloss</isapi:eventType></isapi:EventNotificationAlert>";
        assert_eq!(
            Alert::parse(prefixed).unwrap().get("eventType"),
            Some("videoloss")
        );
        assert!(
            Alert::parse("<Other/>")
                .unwrap_err()
                .contains("root element is <Other>")
        );
        assert!(
            Alert::parse("<EventNotificationAlert><a></b></EventNotificationAlert>")
                .unwrap_err()
                .starts_with("malformed XML")
        );
        assert!(
            Alert::parse("<EventNotificationAlert>&nbsp;</EventNotificationAlert>")
                .unwrap_err()
                .contains("unknown entity &nbsp;")
        );
        assert!(Alert::parse("  ").is_err());
        assert!(
            Alert::parse("<EventNotificationAlert><a>x</a>")
                .unwrap_err()
                .contains("ends inside")
        );
    }
}
