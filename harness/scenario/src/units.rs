//! The value types a scenario file writes as strings or checked numbers:
//! durations (`"500ms"`), byte sizes (`"256KiB"` or an integer),
//! probabilities (`0.0..=1.0`) and addresses with a prefix length
//! (`"10.0.0.1/24"`), and [`Bounded`] amounts. Each rejects a bad value
//! while it is deserialised, so the error carries the key path and line like
//! any other serde error; that is also where the size limits of
//! [`limits`](crate::limits) are enforced, before anything is allocated.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

use crate::limits::MAX_DURATION;

/// Nanoseconds per unit of the duration suffixes a scenario accepts.
const DURATION_UNITS: &[(&str, f64)] =
    &[("ns", 1.0), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)];

/// Bytes per unit of the size suffixes a scenario accepts.
const SIZE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("kB", 1000),
    ("KB", 1000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
];

/// A span of time written as a number and a unit: `"30s"`, `"500ms"`,
/// `"2us"`, `"1.5s"` (units `ns`, `us`, `ms`, `s`, `m`, `h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl FromStr for Dur {
    type Err = String;

    fn from_str(s: &str) -> Result<Dur, String> {
        let bad = || format!("expected a duration like \"500ms\" or \"30s\", got {s:?}");
        let t = s.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let (number, unit) = t.split_at(split);
        let scale = DURATION_UNITS.iter().find(|(u, _)| *u == unit.trim()).map(|(_, n)| *n).ok_or_else(bad)?;
        let value: f64 = number.parse().map_err(|_| bad())?;
        let nanos = value * scale;
        if !nanos.is_finite() || nanos >= u64::MAX as f64 {
            return Err(bad());
        }
        let dur = Duration::from_nanos(nanos.round() as u64);
        if dur > MAX_DURATION {
            return Err(format!("{s:?} exceeds the limit of {}h", MAX_DURATION.as_secs() / 3600));
        }
        Ok(Dur(dur))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        d.deserialize_any(ParseVisitor::<Dur>::new("a duration like \"500ms\" or \"30s\""))
    }
}

/// A number of bytes: an integer, or a string with a unit (`"256KiB"`,
/// `"1MiB"`, `"64kB"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl FromStr for Bytes {
    type Err = String;

    fn from_str(s: &str) -> Result<Bytes, String> {
        let bad = || format!("expected a size like 65536 or \"256KiB\", got {s:?}");
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let scale = match unit.trim() {
            "" => 1,
            unit => SIZE_UNITS.iter().find(|(u, _)| *u == unit).map(|(_, n)| *n).ok_or_else(bad)?,
        };
        let value: u64 = number.parse().map_err(|_| bad())?;
        value.checked_mul(scale).map(Bytes).ok_or_else(bad)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        d.deserialize_any(ParseVisitor::<Bytes>::new("a size like 65536 or \"256KiB\""))
    }
}

/// An amount a [`Bounded`] value can be compared with its limits as.
pub trait Amount: Copy {
    /// The amount as a number.
    fn amount(self) -> u64;
}

impl Amount for u16 {
    fn amount(self) -> u64 {
        u64::from(self)
    }
}

impl Amount for u32 {
    fn amount(self) -> u64 {
        u64::from(self)
    }
}

impl Amount for u64 {
    fn amount(self) -> u64 {
        self
    }
}

impl Amount for usize {
    fn amount(self) -> u64 {
        self as u64
    }
}

impl Amount for Bytes {
    fn amount(self) -> u64 {
        self.0
    }
}

/// A `T` (a count or a size) in `MIN..=MAX`, refused as it is read
/// otherwise with the limit in the message: `100000000 exceeds the limit of
/// 1000000`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounded<T, const MIN: u64, const MAX: u64>(pub T);

impl<T: Amount, const MIN: u64, const MAX: u64> Bounded<T, MIN, MAX> {
    /// `value`, or why it is out of bounds.
    pub fn new(value: T) -> Result<Self, String> {
        match value.amount() {
            n if n > MAX => Err(format!("{n} exceeds the limit of {MAX}")),
            n if n < MIN => Err(format!("{n} is below the minimum of {MIN}")),
            _ => Ok(Bounded(value)),
        }
    }

    /// The value.
    pub fn get(self) -> T {
        self.0
    }
}

impl<'de, T: Amount + Deserialize<'de>, const MIN: u64, const MAX: u64> Deserialize<'de> for Bounded<T, MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Bounded::new(T::deserialize(d)?).map_err(de::Error::custom)
    }
}

/// A probability in `0.0..=1.0` (an integer `0` or `1` is accepted too).
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd)]
pub struct Probability(pub f64);

impl<'de> Deserialize<'de> for Probability {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Probability, D::Error> {
        d.deserialize_any(ProbabilityVisitor)
    }
}

struct ProbabilityVisitor;

impl Visitor<'_> for ProbabilityVisitor {
    type Value = Probability;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a probability in 0.0..=1.0")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Probability, E> {
        if (0.0..=1.0).contains(&v) {
            Ok(Probability(v))
        } else {
            Err(E::custom(format!("expected a probability in 0.0..=1.0, got {v}")))
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Probability, E> {
        self.visit_f64(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Probability, E> {
        self.visit_f64(v as f64)
    }
}

/// An IPv4 address with an optional prefix length: `"10.0.0.1/24"`, or
/// `"10.0.0.1"` for a /24.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V4Cidr(pub Ipv4Addr, pub u8);

impl FromStr for V4Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<V4Cidr, String> {
        let (addr, len) =
            cidr(s, 24, 32).ok_or_else(|| format!("expected an IPv4 address like \"10.0.0.1/24\", got {s:?}"))?;
        Ok(V4Cidr(addr, len))
    }
}

impl<'de> Deserialize<'de> for V4Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<V4Cidr, D::Error> {
        d.deserialize_any(ParseVisitor::<V4Cidr>::new("an IPv4 address like \"10.0.0.1/24\""))
    }
}

/// An IPv6 address with an optional prefix length: `"fd00::1/64"`, or
/// `"fd00::1"` for a /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V6Cidr(pub Ipv6Addr, pub u8);

impl FromStr for V6Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<V6Cidr, String> {
        let (addr, len) =
            cidr(s, 64, 128).ok_or_else(|| format!("expected an IPv6 address like \"fd00::1/64\", got {s:?}"))?;
        Ok(V6Cidr(addr, len))
    }
}

impl<'de> Deserialize<'de> for V6Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<V6Cidr, D::Error> {
        d.deserialize_any(ParseVisitor::<V6Cidr>::new("an IPv6 address like \"fd00::1/64\""))
    }
}

/// `addr[/len]` with `len <= max`, `default` when absent.
fn cidr<A: FromStr>(s: &str, default: u8, max: u8) -> Option<(A, u8)> {
    let (addr, len) = match s.trim().split_once('/') {
        Some((addr, len)) => (addr, len.parse().ok().filter(|&l| l <= max)?),
        None => (s.trim(), default),
    };
    Some((addr.parse().ok()?, len))
}

/// Visits a string and parses it with the type's [`FromStr`], whose error
/// message becomes the serde error; integers are parsed as their decimal
/// text (so a size may be a bare number).
struct ParseVisitor<T> {
    what: &'static str,
    marker: std::marker::PhantomData<T>,
}

impl<T> ParseVisitor<T> {
    fn new(what: &'static str) -> Self {
        ParseVisitor { what, marker: std::marker::PhantomData }
    }
}

impl<T: FromStr<Err = String>> Visitor<'_> for ParseVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit_and_fractions() {
        assert_eq!("30s".parse(), Ok(Dur(Duration::from_secs(30))));
        assert_eq!("500ms".parse(), Ok(Dur(Duration::from_millis(500))));
        assert_eq!("2us".parse(), Ok(Dur(Duration::from_micros(2))));
        assert_eq!("1.5s".parse(), Ok(Dur(Duration::from_millis(1500))));
        assert_eq!("2m".parse(), Ok(Dur(Duration::from_secs(120))));
        assert_eq!("24h".parse(), Ok(Dur(MAX_DURATION)));
        assert_eq!("25h".parse::<Dur>(), Err("\"25h\" exceeds the limit of 24h".into()));
        for bad in ["30", "s", "1.2.3s", "-1s", "3 parsecs", "1e400s", "99999999999999999999h"] {
            assert!(bad.parse::<Dur>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_are_integers_or_take_a_unit() {
        assert_eq!("65536".parse(), Ok(Bytes(65536)));
        assert_eq!("256KiB".parse(), Ok(Bytes(256 * 1024)));
        assert_eq!("1MiB".parse(), Ok(Bytes(1 << 20)));
        assert_eq!("64kB".parse(), Ok(Bytes(64_000)));
        for bad in ["KiB", "1.5MiB", "12 apples", "99999999999GiB"] {
            assert!(bad.parse::<Bytes>().is_err(), "{bad}");
        }
    }

    #[test]
    fn bounded_amounts_name_their_limit() {
        type Buffer = Bounded<Bytes, 1024, 4096>;
        assert_eq!(Buffer::new(Bytes(2048)).map(Bounded::get), Ok(Bytes(2048)));
        assert_eq!(Buffer::new(Bytes(4096)).map(Bounded::get), Ok(Bytes(4096)));
        assert_eq!(Buffer::new(Bytes(4097)), Err("4097 exceeds the limit of 4096".into()));
        assert_eq!(Buffer::new(Bytes(1023)), Err("1023 is below the minimum of 1024".into()));
        assert_eq!(Bounded::<u16, 0, 64>::new(65), Err("65 exceeds the limit of 64".into()));
    }

    #[test]
    fn addresses_default_their_prefix() {
        assert_eq!("10.0.0.1".parse(), Ok(V4Cidr(Ipv4Addr::new(10, 0, 0, 1), 24)));
        assert_eq!("10.0.0.1/16".parse(), Ok(V4Cidr(Ipv4Addr::new(10, 0, 0, 1), 16)));
        assert!("10.0.0.1/33".parse::<V4Cidr>().is_err());
        assert!("fd00::1/129".parse::<V6Cidr>().is_err());
        assert_eq!("fd00::1".parse::<V6Cidr>().map(|c| c.1), Ok(64));
    }
}
