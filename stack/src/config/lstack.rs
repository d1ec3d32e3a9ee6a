//! Reader for gazelle's `lstack.conf`, which gazelle parses with libconfig.
//!
//! No Rust crate reads libconfig reliably, so this is a small hand-written tokenizer and
//! recursive-descent parser for the libconfig grammar: settings `name = value` or `name: value`
//! ended by an optional `;` or `,`; scalars (integers in decimal or `0x` hex with an optional
//! `L`/`LL` suffix, floats, case-insensitive `true`/`false`, double-quoted strings with `\"`,
//! `\\`, `\n`, `\t`, `\r`, `\f`, `\xNN` escapes, adjacent strings concatenated); arrays
//! `[ ... ]` of same-typed scalars; lists `( ... )` of any values; groups `{ ... }`; comments
//! `#`, `//` and `/* ... */`. `@include` is refused. The result is a list of located top-level
//! entries holding [`toml::Value`]s (lists and arrays become TOML arrays, groups TOML tables), so
//! the TOML and lstack.conf front ends share one deserialisation and validation path.

use super::de::{Entry, Pos};
use super::ConfigFileError;

/// Deepest nesting of arrays, lists and groups accepted (guards the recursion).
const MAX_DEPTH: usize = 32;

/// Parses lstack.conf text into located top-level entries.
pub(crate) fn parse(text: &str, origin: &str) -> Result<Vec<Entry>, ConfigFileError> {
    let mut parser = Parser { lexer: Lexer::new(text), peeked: None, key: None };
    parser.document().map_err(|e| ConfigFileError::Syntax {
        origin: origin.to_owned(),
        line: e.pos.line,
        column: e.pos.column,
        key: parser.key.take(),
        message: e.message,
    })
}

/// A syntax error at a position.
#[derive(Debug)]
struct SyntaxError {
    pos: Pos,
    message: String,
}

type PResult<T> = Result<T, SyntaxError>;

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Name(String),
    Str(String),
    Int(i64),
    Float(f64),
    Punct(char),
    Eof,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    pos: Pos,
}

/// Character-level scanner that tracks line and column.
struct Lexer<'a> {
    rest: std::iter::Peekable<std::str::Chars<'a>>,
    pos: Pos,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Self { rest: text.chars().peekable(), pos: Pos { line: 1, column: 1 } }
    }

    fn peek(&mut self) -> Option<char> {
        self.rest.peek().copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.rest.next()?;
        if c == '\n' {
            self.pos = Pos { line: self.pos.line + 1, column: 1 };
        } else {
            self.pos.column += 1;
        }
        Some(c)
    }

    /// The character after the next one, without consuming anything.
    fn peek2(&self) -> Option<char> {
        let mut ahead = self.rest.clone();
        ahead.next();
        ahead.next()
    }

    fn error<T>(pos: Pos, message: impl Into<String>) -> PResult<T> {
        Err(SyntaxError { pos, message: message.into() })
    }

    fn next_token(&mut self) -> PResult<Token> {
        self.skip_trivia()?;
        let pos = self.pos;
        let tok = match self.peek() {
            None => Tok::Eof,
            Some('"') => Tok::Str(self.string()?),
            Some(c) if c.is_ascii_digit() || c == '+' || c == '-' || c == '.' => self.number()?,
            Some(c) if c.is_ascii_alphabetic() || c == '*' => Tok::Name(self.name()),
            Some(c) if "=:;,[](){}".contains(c) => {
                self.bump();
                Tok::Punct(c)
            }
            Some('@') => return Self::error(pos, "@include directives are not supported"),
            Some(c) => return Self::error(pos, format!("unexpected character {c:?}")),
        };
        Ok(Token { tok, pos })
    }

    fn skip_trivia(&mut self) -> PResult<()> {
        loop {
            match (self.peek(), self.peek2()) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('#'), _) | (Some('/'), Some('/')) => self.skip_line(),
                (Some('/'), Some('*')) => self.skip_block_comment()?,
                _ => return Ok(()),
            }
        }
    }

    fn skip_line(&mut self) {
        while self.peek().is_some_and(|c| c != '\n') {
            self.bump();
        }
    }

    fn skip_block_comment(&mut self) -> PResult<()> {
        let start = self.pos;
        self.bump();
        self.bump();
        loop {
            match (self.bump(), self.peek()) {
                (Some('*'), Some('/')) => {
                    self.bump();
                    return Ok(());
                }
                (Some(_), _) => {}
                (None, _) => return Self::error(start, "unterminated /* comment"),
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek().filter(|c| c.is_ascii_alphanumeric() || "-_*".contains(*c)) {
            name.push(c);
            self.bump();
        }
        name
    }

    fn string(&mut self) -> PResult<String> {
        let start = self.pos;
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Self::error(start, "unterminated string"),
                Some('"') => return Ok(out),
                Some('\\') => out.push(self.escape()?),
                Some(c) => out.push(c),
            }
        }
    }

    fn escape(&mut self) -> PResult<char> {
        let pos = self.pos;
        match self.bump() {
            Some('"') => Ok('"'),
            Some('\\') => Ok('\\'),
            Some('n') => Ok('\n'),
            Some('t') => Ok('\t'),
            Some('r') => Ok('\r'),
            Some('f') => Ok('\x0c'),
            Some('x') => self.hex_escape(pos),
            Some(c) => Self::error(pos, format!("unknown escape \\{c} in string")),
            None => Self::error(pos, "unterminated string"),
        }
    }

    fn hex_escape(&mut self, pos: Pos) -> PResult<char> {
        let digits: String = [self.bump(), self.bump()].into_iter().flatten().collect();
        match u8::from_str_radix(&digits, 16) {
            Ok(b) if b.is_ascii() => Ok(char::from(b)),
            _ => Self::error(pos, "\\x escapes need two hex digits naming an ASCII character"),
        }
    }

    fn number(&mut self) -> PResult<Tok> {
        let pos = self.pos;
        let mut lexeme = String::new();
        while let Some(c) = self.peek() {
            let exponent_sign = (c == '+' || c == '-') && lexeme.ends_with(['e', 'E']) && !is_hex(&lexeme);
            let first_sign = (c == '+' || c == '-') && lexeme.is_empty();
            if !(c.is_ascii_alphanumeric() || c == '.' || exponent_sign || first_sign) {
                break;
            }
            lexeme.push(c);
            self.bump();
        }
        number_value(&lexeme).ok_or_else(|| SyntaxError { pos, message: format!("malformed number {lexeme:?}") })
    }
}

fn is_hex(lexeme: &str) -> bool {
    lexeme.starts_with("0x") || lexeme.starts_with("0X")
}

/// Interprets a numeric lexeme with libconfig's rules.
fn number_value(lexeme: &str) -> Option<Tok> {
    let int = lexeme.strip_suffix("LL").or_else(|| lexeme.strip_suffix('L')).unwrap_or(lexeme);
    if is_hex(int) {
        return i64::from_str_radix(&int[2..], 16).ok().map(Tok::Int);
    }
    let digits = int.strip_prefix(['+', '-']).unwrap_or(int);
    if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
        return int.parse().ok().map(Tok::Int);
    }
    let float_chars = lexeme.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c));
    let has_digit = lexeme.chars().any(|c| c.is_ascii_digit());
    if float_chars && has_digit && lexeme.contains(['.', 'e', 'E']) {
        return lexeme.parse().ok().map(Tok::Float);
    }
    None
}

/// Recursive-descent parser over the token stream.
struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Token>,
    /// The top-level key being parsed, for error messages.
    key: Option<String>,
}

impl Parser<'_> {
    fn next(&mut self) -> PResult<Token> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lexer.next_token(),
        }
    }

    fn peek(&mut self) -> PResult<&Token> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next_token()?);
        }
        self.peeked.as_ref().ok_or_else(|| SyntaxError { pos: self.lexer.pos, message: "internal error".into() })
    }

    fn eat_punct(&mut self, p: char) -> PResult<bool> {
        let hit = self.peek()?.tok == Tok::Punct(p);
        if hit {
            self.next()?;
        }
        Ok(hit)
    }

    fn document(&mut self) -> PResult<Vec<Entry>> {
        let mut entries = Vec::new();
        loop {
            let token = self.next()?;
            match token.tok {
                Tok::Eof => return Ok(entries),
                Tok::Name(name) => {
                    self.key = Some(name.clone());
                    let value = self.setting_value(&name, 0)?;
                    entries.push(Entry { key: name, pos: token.pos, value });
                }
                // Reported against the previous key, whose value is the likely culprit.
                other => return Lexer::error(token.pos, format!("expected the next key, found {}", describe(&other))),
            }
        }
    }

    /// Parses `= value [;|,]` after a setting's name.
    fn setting_value(&mut self, name: &str, depth: usize) -> PResult<toml::Value> {
        let token = self.next()?;
        if !matches!(token.tok, Tok::Punct('=' | ':')) {
            let found = describe(&token.tok);
            return Lexer::error(token.pos, format!("expected \"=\" after key \"{name}\", found {found}"));
        }
        let value = self.value(depth)?;
        if !self.eat_punct(';')? {
            self.eat_punct(',')?;
        }
        Ok(value)
    }

    fn value(&mut self, depth: usize) -> PResult<toml::Value> {
        let token = self.next()?;
        if depth >= MAX_DEPTH {
            return Lexer::error(token.pos, format!("values nested deeper than {MAX_DEPTH} levels"));
        }
        match token.tok {
            Tok::Str(s) => self.adjacent_strings(s),
            Tok::Int(i) => Ok(toml::Value::Integer(i)),
            Tok::Float(x) => Ok(toml::Value::Float(x)),
            Tok::Name(n) if n.eq_ignore_ascii_case("true") => Ok(toml::Value::Boolean(true)),
            Tok::Name(n) if n.eq_ignore_ascii_case("false") => Ok(toml::Value::Boolean(false)),
            Tok::Punct('[') => self.array(depth),
            Tok::Punct('(') => self.list(depth).map(toml::Value::Array),
            Tok::Punct('{') => self.group(depth),
            other => Lexer::error(token.pos, format!("expected a value, found {}", describe(&other))),
        }
    }

    fn adjacent_strings(&mut self, mut s: String) -> PResult<toml::Value> {
        while let Tok::Str(more) = &self.peek()?.tok {
            s.push_str(more);
            self.next()?;
        }
        Ok(toml::Value::String(s))
    }

    /// Comma-separated values up to `close`; the opening bracket is already consumed.
    fn elements(&mut self, close: char, depth: usize) -> PResult<Vec<(Pos, toml::Value)>> {
        let mut items = Vec::new();
        if self.eat_punct(close)? {
            return Ok(items);
        }
        loop {
            let pos = self.peek()?.pos;
            items.push((pos, self.value(depth + 1)?));
            let token = self.next()?;
            match token.tok {
                Tok::Punct(',') => {}
                Tok::Punct(c) if c == close => return Ok(items),
                other => {
                    let found = describe(&other);
                    return Lexer::error(token.pos, format!("expected \",\" or \"{close}\", found {found}"));
                }
            }
        }
    }

    fn list(&mut self, depth: usize) -> PResult<Vec<toml::Value>> {
        Ok(self.elements(')', depth)?.into_iter().map(|(_, v)| v).collect())
    }

    /// An array: scalars only, all of one type (libconfig's rule).
    fn array(&mut self, depth: usize) -> PResult<toml::Value> {
        let items = self.elements(']', depth)?;
        let first_type = items.first().map(|(_, v)| v.type_str());
        for (pos, item) in &items {
            if matches!(item, toml::Value::Array(_) | toml::Value::Table(_)) {
                return Lexer::error(*pos, "arrays [ ] hold scalars only; use a list ( ) for nested values");
            }
            if Some(item.type_str()) != first_type {
                return Lexer::error(*pos, "array elements must all have the same type; use a list ( ) to mix");
            }
        }
        Ok(toml::Value::Array(items.into_iter().map(|(_, v)| v).collect()))
    }

    /// A group `{ name = value; ... }`; the `{` is already consumed.
    fn group(&mut self, depth: usize) -> PResult<toml::Value> {
        let mut table = toml::Table::new();
        loop {
            let token = self.next()?;
            match token.tok {
                Tok::Punct('}') => return Ok(toml::Value::Table(table)),
                Tok::Name(name) => {
                    let value = self.setting_value(&name, depth + 1)?;
                    if table.insert(name.clone(), value).is_some() {
                        return Lexer::error(token.pos, format!("duplicate setting \"{name}\" in group"));
                    }
                }
                other => {
                    return Lexer::error(token.pos, format!("expected a key or \"}}\", found {}", describe(&other)))
                }
            }
        }
    }
}

/// A short description of a token for error messages.
fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Name(n) => format!("{n:?} (strings need double quotes)"),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Int(i) => format!("number {i}"),
        Tok::Float(x) => format!("number {x}"),
        Tok::Punct(c) => format!("\"{c}\""),
        Tok::Eof => "end of file".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toml::Value;

    fn values(text: &str) -> Vec<(String, usize, Value)> {
        match parse(text, "t.conf") {
            Ok(entries) => entries.into_iter().map(|e| (e.key, e.pos.line, e.value)).collect(),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    fn error(text: &str) -> ConfigFileError {
        match parse(text, "t.conf") {
            Ok(entries) => panic!("expected an error, got {entries:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn scalars_and_separators() {
        let got =
            values("a=1\nb = \"x\";\nc: TRUE, // c\nd = 1.5e3 # c\ne = 7L; f = 0x1fLL; g = -12; h = .5; i = false");
        let keys: Vec<(&str, usize)> = got.iter().map(|(k, l, _)| (k.as_str(), *l)).collect();
        assert_eq!(keys, [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5), ("f", 5), ("g", 5), ("h", 5), ("i", 5)]);
        let vals: Vec<Value> = got.into_iter().map(|(_, _, v)| v).collect();
        let want = [
            Value::Integer(1),
            Value::String("x".into()),
            Value::Boolean(true),
            Value::Float(1500.0),
            Value::Integer(7),
            Value::Integer(31),
            Value::Integer(-12),
            Value::Float(0.5),
            Value::Boolean(false),
        ];
        assert_eq!(vals, want);
        // Hex literals carry no sign in libconfig.
        assert!(matches!(error("c: -0x10;"), ConfigFileError::Syntax { line: 1, .. }));
    }

    #[test]
    fn strings_escape_and_concatenate() {
        let got = values("s = \"a\\\"b\\\\c\\n\\x41\" /* mid */ \"-tail\";");
        assert_eq!(got[0].2, Value::String("a\"b\\c\nA-tail".into()));
    }

    #[test]
    fn arrays_lists_groups() {
        let got = values("a = [\"x\", \"y\"];\nl = (1, \"two\", [3], { k = 4; });\ng = { x = 1; y: (); };\ne = [];");
        assert_eq!(got[0].2, Value::Array(vec!["x".into(), "y".into()]));
        let Value::Array(list) = &got[1].2 else { panic!("list expected") };
        assert_eq!(list.len(), 4);
        assert!(got[2].2.as_table().is_some_and(|t| t.len() == 2));
        assert_eq!(got[3].2, Value::Array(vec![]));
    }

    #[test]
    fn comments_everywhere() {
        let got = values("# hash\n// slash\n/* block\n spanning */ a = /* in */ 1 # tail\n");
        assert_eq!(got, vec![("a".to_owned(), 4, Value::Integer(1))]);
    }

    #[test]
    fn syntax_errors_name_line_and_key() {
        let cases: [(&str, usize, Option<&str>); 11] = [
            ("a = 1;\nnum_cpus = 2,3\n", 2, Some("num_cpus")),
            ("a = 1\nb 2\n", 2, Some("b")),
            ("mode = run-to-wakeup\n", 1, Some("mode")),
            ("s = \"open\n\n", 1, Some("s")),
            ("x = [1, \"a\"]\n", 1, Some("x")),
            ("x = [1, 2\n", 2, Some("x")),
            ("/* never closed\n", 1, None),
            ("\n@include \"other.cfg\"\n", 2, None),
            ("x = 99999999999999999999\n", 1, Some("x")),
            ("= 3\n", 1, None),
            ("a = 1 ] b = 2\n", 1, Some("a")),
        ];
        for (text, line, key) in cases {
            let e = error(text);
            assert!(matches!(e, ConfigFileError::Syntax { .. }), "{text:?}: {e}");
            assert_eq!(e.line(), Some(line), "{text:?}: {e}");
            assert_eq!(e.key(), key, "{text:?}: {e}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let text = format!("x = {}1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(error(&text).to_string().contains("nested deeper"));
    }

    #[test]
    fn number_lexemes() {
        assert_eq!(number_value("12"), Some(Tok::Int(12)));
        assert_eq!(number_value("+12"), Some(Tok::Int(12)));
        assert_eq!(number_value("0xff"), Some(Tok::Int(255)));
        assert_eq!(number_value("1e-3"), Some(Tok::Float(0.001)));
        assert_eq!(number_value("1x"), None);
        assert_eq!(number_value("-"), None);
        assert_eq!(number_value("."), None);
        assert_eq!(number_value("0x"), None);
    }
}
