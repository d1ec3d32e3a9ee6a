//! The shared back half of both parsers: a flat list of located `key = value` entries is fed to
//! the serde-derived [`StackConfig`] deserialiser through a tiny [`serde::Deserializer`] that
//! remembers which entry it is reading, so any serde error can be reported with its key and line.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::de::value::{MapDeserializer, SeqDeserializer, StrDeserializer};
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{keys, ConfigFileError, ConfigWarning, StackConfig, WarningKind};

/// A 1-based position in a source text; columns count characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    /// The position of byte `offset` in `text` (clamped to the text, rounded down to a char).
    pub fn at(text: &str, offset: usize) -> Pos {
        let mut end = offset.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let before = &text[..end];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        Pos { line, column: before[line_start..].chars().count() + 1 }
    }
}

/// One top-level setting: its key, where the key was written, and its value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub pos: Pos,
    pub value: toml::Value,
}

/// Refuses text no configuration file holds: control characters other than tab, newline and
/// carriage return, and U+FFFD (what a lossy decoder makes of binary data). Reported with the
/// line and column of the first one, before any parsing.
pub(crate) fn reject_binary(text: &str, origin: &str) -> Result<(), ConfigFileError> {
    let junk = |c: char| (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{fffd}';
    let Some((offset, c)) = text.char_indices().find(|(_, c)| junk(*c)) else { return Ok(()) };
    let pos = Pos::at(text, offset);
    Err(ConfigFileError::Syntax {
        origin: origin.to_owned(),
        line: pos.line,
        column: pos.column,
        key: None,
        message: format!("unexpected character U+{:04X}; is this a binary file?", u32::from(c)),
    })
}

/// Deserialises and validates a [`StackConfig`] from `entries`, naming `origin` in errors and
/// warnings. Keys of earlier gazelle releases and keys gazelle never reads are set aside with
/// a warning before deserialisation; current keys dtnet does not act on are deserialised and
/// checked like the others, and then reported as ignored.
pub(crate) fn build(entries: &[Entry], origin: &str) -> Result<StackConfig, ConfigFileError> {
    reject_duplicates(entries, origin)?;
    let mut warnings = Vec::new();
    let mut current_entries = Vec::with_capacity(entries.len());
    for entry in entries {
        let kind = if let Some(r) = keys::retired_key(&entry.key) {
            Some(WarningKind::Retired {
                removed: r.removed,
                absent_since: r.absent_since,
                replaced_by: r.replaced_by,
                note: r.note,
            })
        } else if let Some(reason) = keys::not_read(&entry.key) {
            Some(WarningKind::Ignored { reason })
        } else {
            current_entries.push(entry.clone());
            keys::ignored_reason(&entry.key).map(|reason| WarningKind::Ignored { reason })
        };
        warnings.extend(kind.map(|kind| warning(origin, entry, kind)));
    }
    let entries = current_entries.as_slice();
    let current = Cell::new(None);
    let mut config = StackConfig::deserialize(DocDe { entries, current: &current })
        .map_err(|e| locate(e, current.get().and_then(|i| entries.get(i)), origin))?;
    config.validate().map_err(|e| ConfigFileError::Invalid {
        origin: origin.to_owned(),
        line: line_of(entries, e.key).or_else(|| e.required_by.and_then(|by| line_of(entries, by))),
        key: e.key.to_owned(),
        message: e.message,
    })?;
    if config.stack_num > 0 {
        let num_cpus = entries.iter().find(|e| e.key == "num_cpus");
        warnings.extend(num_cpus.map(|entry| {
            let effect = "gazelle does not read num_cpus and runs the stack on the NUMA node of the starting CPU";
            warning(origin, entry, WarningKind::Overridden { by: "stack_num", effect })
        }));
    }
    warnings.sort_by_key(|w| (w.line, w.column));
    config.warnings = warnings;
    Ok(config)
}

fn warning(origin: &str, entry: &Entry, kind: WarningKind) -> ConfigWarning {
    ConfigWarning {
        origin: origin.to_owned(),
        line: entry.pos.line,
        column: entry.pos.column,
        key: entry.key.clone(),
        kind,
    }
}

/// The line a key (or its dtnet alias) was written on.
fn line_of(entries: &[Entry], key: &str) -> Option<usize> {
    let alias = super::alias_of(key);
    entries.iter().find(|e| e.key == key || Some(e.key.as_str()) == alias).map(|e| e.pos.line)
}

fn reject_duplicates(entries: &[Entry], origin: &str) -> Result<(), ConfigFileError> {
    let mut seen: HashMap<&str, Pos> = HashMap::new();
    for entry in entries {
        if let Some(first) = seen.insert(&entry.key, entry.pos) {
            return Err(ConfigFileError::DuplicateKey {
                origin: origin.to_owned(),
                line: entry.pos.line,
                column: entry.pos.column,
                key: entry.key.clone(),
                first_line: first.line,
            });
        }
    }
    Ok(())
}

/// Attaches the entry being read when serde failed.
fn locate(error: DeError, entry: Option<&Entry>, origin: &str) -> ConfigFileError {
    let origin = origin.to_owned();
    let (entry, error) = match (error, entry) {
        (DeError::Missing(key), _) => return ConfigFileError::MissingKey { origin, key: key.to_owned() },
        (error, Some(entry)) => (entry, error),
        // Unreachable in practice: every other error is raised while reading an entry.
        (error, None) => {
            return ConfigFileError::Syntax { origin, line: 1, column: 1, key: None, message: error.to_string() }
        }
    };
    let (line, column, key) = (entry.pos.line, entry.pos.column, entry.key.clone());
    match error {
        DeError::UnknownKey(_) => ConfigFileError::UnknownKey { origin, line, column, key },
        DeError::Duplicate(_) => ConfigFileError::BadValue {
            origin,
            line,
            column,
            key,
            message: "set more than once (through an alias)".to_owned(),
        },
        other => ConfigFileError::BadValue { origin, line, column, key, message: other.to_string() },
    }
}

/// The error type of the internal deserialiser; keeps serde's structured cases apart.
#[derive(Debug)]
pub(crate) enum DeError {
    Message(String),
    UnknownKey(String),
    Missing(&'static str),
    Duplicate(&'static str),
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Message(m) => f.write_str(m),
            Self::UnknownKey(k) => write!(f, "unknown key \"{k}\""),
            Self::Missing(k) => write!(f, "missing key \"{k}\""),
            Self::Duplicate(k) => write!(f, "key \"{k}\" set more than once"),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::Message(msg.to_string())
    }

    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> Self {
        Self::UnknownKey(field.to_owned())
    }

    fn missing_field(field: &'static str) -> Self {
        Self::Missing(field)
    }

    fn duplicate_field(field: &'static str) -> Self {
        Self::Duplicate(field)
    }
}

/// Top-level deserialiser: presents the entries as a map and records the entry being read.
struct DocDe<'a> {
    entries: &'a [Entry],
    current: &'a Cell<Option<usize>>,
}

impl<'de> de::Deserializer<'de> for DocDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(EntryAccess { entries: self.entries, next: 0, current: self.current })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

struct EntryAccess<'a> {
    entries: &'a [Entry],
    next: usize,
    current: &'a Cell<Option<usize>>,
}

impl<'de> MapAccess<'de> for EntryAccess<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.get(self.next) else { return Ok(None) };
        self.current.set(Some(self.next));
        let key: StrDeserializer<'_, DeError> = entry.key.as_str().into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let entry = self.entries.get(self.next).ok_or_else(|| de::Error::custom("value without a key"))?;
        self.next += 1;
        seed.deserialize(ValueDe(&entry.value))
    }
}

/// Deserialiser over a borrowed [`toml::Value`] with [`DeError`] as its error type.
#[derive(Clone, Copy)]
struct ValueDe<'a>(&'a toml::Value);

impl<'de> IntoDeserializer<'de, DeError> for ValueDe<'_> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> de::Deserializer<'de> for ValueDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            toml::Value::Integer(i) => visitor.visit_i64(*i),
            toml::Value::Float(x) => visitor.visit_f64(*x),
            toml::Value::Boolean(b) => visitor.visit_bool(*b),
            toml::Value::String(s) => visitor.visit_str(s),
            toml::Value::Datetime(d) => visitor.visit_string(d.to_string()),
            toml::Value::Array(a) => visitor.visit_seq(SeqDeserializer::new(a.iter().map(ValueDe))),
            toml::Value::Table(t) => {
                visitor.visit_map(MapDeserializer::new(t.iter().map(|(k, v)| (k.as_str(), ValueDe(v)))))
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.0 {
            toml::Value::String(s) => visitor.visit_enum(IntoDeserializer::<DeError>::into_deserializer(s.as_str())),
            _ => self.deserialize_any(visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

// ---------------------------------------------------------------------------------------------
// Field helpers used through `#[serde(deserialize_with = ...)]`.
// ---------------------------------------------------------------------------------------------

/// The largest CPU id gazelle accepts in a CPU list (`CPUS_MAX_NUM`, exclusive).
pub(crate) const CPUS_MAX: u32 = 640;

const CPU_LIST_HINT: &str = "expected a CPU list like \"2,3\" or \"2-5\"";

/// A gazelle on/off switch: `0`/`1` as gazelle writes them, or `true`/`false`.
pub(crate) fn flag<'de, D: de::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    d.deserialize_any(FlagVisitor)
}

struct FlagVisitor;

impl Visitor<'_> for FlagVisitor {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0 or 1 (or true/false)")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(E::custom(format!("expected 0 or 1 (or true/false), got {v}"))),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

/// A CPU (or NUMA node) list: gazelle's string form `"2,3,4"` / `"2-5"`, a single integer, or
/// (TOML convenience) an array of integers.
pub(crate) fn cpu_list<'de, D: de::Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
    d.deserialize_any(CpuListVisitor)
}

/// [`cpu_list`] for optional keys.
pub(crate) fn opt_cpu_list<'de, D: de::Deserializer<'de>>(d: D) -> Result<Option<Vec<u32>>, D::Error> {
    cpu_list(d).map(Some)
}

struct CpuListVisitor;

impl<'de> Visitor<'de> for CpuListVisitor {
    type Value = Vec<u32>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(CPU_LIST_HINT)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u32>, E> {
        parse_cpu_list(v).map_err(|why| E::custom(format!("{CPU_LIST_HINT}, got {v:?} ({why})")))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Vec<u32>, E> {
        cpu_id(v).map(|id| vec![id]).map_err(|why| E::custom(format!("{CPU_LIST_HINT} ({why})")))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u32>, A::Error> {
        let mut cpus = Vec::new();
        while let Some(v) = seq.next_element::<i64>()? {
            cpus.push(cpu_id(v).map_err(|why| de::Error::custom(format!("{CPU_LIST_HINT} ({why})")))?);
        }
        Ok(cpus)
    }
}

fn cpu_id(v: i64) -> Result<u32, String> {
    u32::try_from(v).ok().filter(|id| *id < CPUS_MAX).ok_or_else(|| format!("CPU id {v} is not in 0..{CPUS_MAX}"))
}

/// Parses gazelle's CPU list syntax: comma-separated ids or inclusive `a-b` ranges, ids in
/// decimal or `0x` hex, blanks allowed around items. An all-blank string is the empty list.
pub(crate) fn parse_cpu_list(text: &str) -> Result<Vec<u32>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut cpus = Vec::new();
    for item in text.split(',') {
        match item.split_once('-') {
            Some((lo, hi)) => cpus.extend(cpu_range(parse_cpu_id(lo)?, parse_cpu_id(hi)?)?),
            None => cpus.push(parse_cpu_id(item)?),
        }
    }
    Ok(cpus)
}

fn cpu_range(lo: u32, hi: u32) -> Result<std::ops::RangeInclusive<u32>, String> {
    if lo > hi {
        return Err(format!("range {lo}-{hi} is reversed"));
    }
    Ok(lo..=hi)
}

fn parse_cpu_id(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => t.parse::<u32>(),
    };
    let id = parsed.map_err(|_| format!("{t:?} is not a CPU id"))?;
    cpu_id(i64::from(id))
}

/// A value parsed with [`FromStr`] from a string; `what` describes the expected form.
pub(crate) fn parsed<'de, D, T>(d: D, what: &'static str) -> Result<T, D::Error>
where
    D: de::Deserializer<'de>,
    T: FromStr,
{
    d.deserialize_any(ParseVisitor { what, marker: PhantomData })
}

struct ParseVisitor<T> {
    what: &'static str,
    marker: PhantomData<T>,
}

impl<T: FromStr> Visitor<'_> for ParseVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}", self.what)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.trim().parse().map_err(|_| E::custom(format!("expected {}, got {v:?}", self.what)))
    }
}

/// An optional IPv4 address string.
pub(crate) fn opt_ipv4<'de, D: de::Deserializer<'de>>(d: D) -> Result<Option<std::net::Ipv4Addr>, D::Error> {
    parsed(d, "an IPv4 address like \"192.168.1.10\"").map(Some)
}

/// An optional IPv6 address string.
pub(crate) fn opt_ipv6<'de, D: de::Deserializer<'de>>(d: D) -> Result<Option<std::net::Ipv6Addr>, D::Error> {
    parsed(d, "an IPv6 address like \"fe80::1\"").map(Some)
}

/// A list of ports: gazelle's `"aa:..;bb:.."` string (entries of 12 characters are PCI
/// addresses, others MAC addresses, as gazelle reads them), or an array of strings.
pub(crate) fn opt_dev_list<'de, D: de::Deserializer<'de>>(d: D) -> Result<Option<Vec<super::DevAddr>>, D::Error> {
    d.deserialize_any(DevListVisitor).map(Some)
}

const DEV_HINT: &str = "a MAC address like \"aa:bb:cc:dd:ee:ff\" or a PCI address like \"0000:03:00.0\"";

/// Length of a PCI address in gazelle's `bond_slave_mac` (`DEV_PCI_ADDR_LEN`).
const PCI_ADDR_LEN: usize = 12;

fn dev_addr<E: de::Error>(text: &str) -> Result<super::DevAddr, E> {
    let text = text.trim();
    let parsed = if text.len() == PCI_ADDR_LEN {
        text.parse().ok().map(super::DevAddr::Pci)
    } else {
        text.parse().ok().map(super::DevAddr::Mac)
    };
    parsed.ok_or_else(|| E::custom(format!("expected {DEV_HINT}, got {text:?}")))
}

struct DevListVisitor;

impl<'de> Visitor<'de> for DevListVisitor {
    type Value = Vec<super::DevAddr>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ports separated by ';', each {DEV_HINT}")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        v.split(';').filter(|s| !s.trim().is_empty()).map(dev_addr).collect()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut devs = Vec::new();
        while let Some(s) = seq.next_element::<String>()? {
            devs.push(dev_addr(&s)?);
        }
        Ok(devs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_chars() {
        let text = "ab\nçd = 1\n";
        assert_eq!(Pos::at(text, 0), Pos { line: 1, column: 1 });
        assert_eq!(Pos::at(text, 3), Pos { line: 2, column: 1 });
        // 'd' follows a two-byte character: byte 5, column 2.
        assert_eq!(Pos::at(text, 5), Pos { line: 2, column: 2 });
        // Inside a multi-byte char and past the end are clamped, not panics.
        assert_eq!(Pos::at(text, 4), Pos { line: 2, column: 1 });
        assert_eq!(Pos::at(text, 999), Pos { line: 3, column: 1 });
    }

    #[test]
    fn cpu_lists_follow_gazelle_syntax() {
        assert_eq!(parse_cpu_list("2"), Ok(vec![2]));
        assert_eq!(parse_cpu_list("2,3,4"), Ok(vec![2, 3, 4]));
        assert_eq!(parse_cpu_list(" 2-5 , 8"), Ok(vec![2, 3, 4, 5, 8]));
        assert_eq!(parse_cpu_list("0x10"), Ok(vec![16]));
        assert_eq!(parse_cpu_list("  "), Ok(vec![]));
        assert!(parse_cpu_list("5-2").is_err());
        assert!(parse_cpu_list("2,,3").is_err());
        assert!(parse_cpu_list("two").is_err());
        assert!(parse_cpu_list("640").is_err());
        assert!(parse_cpu_list("0-4000000000").is_err());
        assert!(parse_cpu_list("-1").is_err());
    }
}
