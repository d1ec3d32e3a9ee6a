//! TOML front end: turns a TOML document into located top-level entries.

use super::de::{Entry, Pos};
use super::ConfigFileError;

/// Parses TOML text into top-level entries in document order, each with its key's position.
pub(crate) fn parse(text: &str, origin: &str) -> Result<Vec<Entry>, ConfigFileError> {
    // The spanned parse gives key positions; the plain one gives owned values.
    let spanned = toml::de::DeTable::parse(text).map_err(|e| syntax(text, origin, &e))?;
    let table: toml::Table = toml::from_str(text).map_err(|e| syntax(text, origin, &e))?;
    let mut entries: Vec<Entry> = spanned
        .get_ref()
        .iter()
        .filter_map(|(key, _)| {
            let name: &str = key.get_ref();
            let value = table.get(name)?.clone();
            Some(Entry { key: name.to_owned(), pos: Pos::at(text, key.span().start), value })
        })
        .collect();
    entries.sort_by_key(|e| e.pos);
    Ok(entries)
}

fn syntax(text: &str, origin: &str, error: &toml::de::Error) -> ConfigFileError {
    let pos = Pos::at(text, error.span().map_or(0, |s| s.start));
    ConfigFileError::Syntax {
        origin: origin.to_owned(),
        line: pos.line,
        column: pos.column,
        key: None,
        message: error.message().trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_document_order_and_positions() {
        let text = "zeta = 1\n\nalpha = \"a\"\n  mid = [1, 2]\n";
        let entries = parse(text, "t.toml").unwrap_or_default();
        let got: Vec<(&str, usize, usize)> =
            entries.iter().map(|e| (e.key.as_str(), e.pos.line, e.pos.column)).collect();
        assert_eq!(got, [("zeta", 1, 1), ("alpha", 3, 1), ("mid", 4, 3)]);
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let err = parse("a = 1\nb = = 2\n", "t.toml").err();
        assert!(matches!(err, Some(ConfigFileError::Syntax { line: 2, .. })), "{err:?}");
        let err = parse("a = 1\na = 2\n", "t.toml").err();
        assert!(matches!(err, Some(ConfigFileError::Syntax { line: 2, .. })), "{err:?}");
    }
}
