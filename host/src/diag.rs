//! Errors that point into a source file: `path:line:column: message`.
//!
//! Shared by every TOML file the host reads (plugin manifests, site manifests, region rule
//! sets), so they all report mistakes the same way.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// A mistake in a file, with where it is and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", path.display())]
pub struct SourceError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line (0 when the file could not be read).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What was expected.
    pub message: String,
}

impl SourceError {
    /// An error at a byte span of `text` (the start of the file when unknown).
    pub fn at(
        path: &Path,
        text: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = span.map_or((1, 1), |s| line_col(text, s.start));
        SourceError {
            path: path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    /// The file could not be read at all.
    pub fn unreadable(path: &Path, error: &std::io::Error) -> Self {
        SourceError {
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read the file: {error}"),
        }
    }
}

/// Reads a TOML file into `T`; a syntax or shape error names the line.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<(T, String), SourceError> {
    let text = std::fs::read_to_string(path).map_err(|e| SourceError::unreadable(path, &e))?;
    let value = parse_toml(path, &text)?;
    Ok((value, text))
}

/// Parses TOML text into `T`; a syntax or shape error names the line.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, SourceError> {
    toml::from_str(text).map_err(|e| SourceError::at(path, text, e.span(), e.message().trim()))
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A scalar TOML value (string, integer, float, boolean) as the text a plugin setting carries.
pub fn scalar_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Test helper for "snapshot" tables of file errors: each case edits a good file (`from` →
/// `to`, first occurrence) and names the exact error `parse` must give.
#[cfg(test)]
pub(crate) fn assert_edit_errors<T: std::fmt::Debug>(
    good: &str,
    cases: &[(&str, &str, &str)],
    parse: impl Fn(&str) -> Result<T, String>,
) {
    let mut wrong = Vec::new();
    for (from, to, expected) in cases {
        assert!(good.contains(from), "case {from:?} does not apply");
        let text = good.replacen(from, to, 1);
        match parse(&text) {
            Err(got) if &got == expected => {}
            other => wrong.push(format!(
                "{from:?} -> {to:?}\n  expected {expected}\n  got      {other:?}"
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        assert_eq!(line_col(text, 11), (2, 5));
    }
}
