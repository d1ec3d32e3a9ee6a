//! The Toeplitz secret key: 40 or 52 bytes, stored inline so a key is `Copy`
//! and needs no allocation.

use crate::error::ConfigError;

const FIELD: &str = "rss.key";
const MAX_LEN: usize = 52;
const VALID_LENS: [usize; 2] = [40, 52];

/// A Toeplitz key: 40 bytes (most NICs) or 52 bytes (e.g. i40e).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RssKey {
    bytes: [u8; 52],
    len: u8,
}

impl RssKey {
    /// The 40-byte key of ixgbe (`rss_intel_key`) and of Microsoft's RSS
    /// verification suite; the default of most NICs.
    pub const DEFAULT: RssKey = RssKey::from_40([
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca,
        0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b,
        0xbe, 0xac, 0x01, 0xfa,
    ]);

    /// A key from its bytes, which must number 40 or 52.
    pub fn new(bytes: &[u8]) -> Result<RssKey, ConfigError> {
        if !VALID_LENS.contains(&bytes.len()) {
            return Err(length_error(bytes.len()));
        }
        let mut key = RssKey { bytes: [0; MAX_LEN], len: 0 };
        key.bytes[..bytes.len()].copy_from_slice(bytes);
        key.len = bytes.len() as u8;
        Ok(key)
    }

    /// A key of `len` (40 or 52) bytes repeating `6d 5a`: its 16-bit period
    /// gives both directions of a flow the same hash.
    pub fn symmetric(len: usize) -> Result<RssKey, ConfigError> {
        let mut bytes = [0; MAX_LEN];
        for (byte, pattern) in bytes.iter_mut().zip([0x6d, 0x5a].into_iter().cycle()) {
            *byte = pattern;
        }
        RssKey::new(bytes.get(..len).ok_or_else(|| length_error(len))?)
    }

    /// A key from hex digits, as NIC tools print it: an optional `0x`
    /// prefix, whitespace and `:` between digits are ignored.
    pub fn from_hex(text: &str) -> Result<RssKey, ConfigError> {
        let text = text.trim();
        let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
        let mut bytes = [0u8; MAX_LEN];
        let mut nibbles = 0;
        for c in digits.chars().filter(|c| !c.is_whitespace() && *c != ':') {
            let value = c.to_digit(16).ok_or_else(|| ConfigError::new(FIELD, format!("{c:?} is not a hex digit")))?;
            let byte =
                bytes.get_mut(nibbles / 2).ok_or_else(|| ConfigError::new(FIELD, "more than 52 bytes of hex"))?;
            *byte = (*byte << 4) | value as u8;
            nibbles += 1;
        }
        if nibbles % 2 != 0 {
            return Err(ConfigError::new(FIELD, "odd number of hex digits"));
        }
        RssKey::new(&bytes[..nibbles / 2])
    }

    /// The key's bytes (40 or 52 of them).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The longest hash input the key covers: its length less 4 bytes
    /// (36 = an IPv6 4-tuple for a 40-byte key). Longer inputs are hashed
    /// over this prefix only.
    pub fn max_input_len(&self) -> usize {
        usize::from(self.len) - 4
    }

    /// A 40-byte key in a `const` context.
    const fn from_40(src: [u8; 40]) -> RssKey {
        let mut bytes = [0; MAX_LEN];
        let mut i = 0;
        while i < src.len() {
            bytes[i] = src[i];
            i += 1;
        }
        RssKey { bytes, len: 40 }
    }
}

/// The refusal of a key that is not 40 or 52 bytes long.
fn length_error(len: usize) -> ConfigError {
    ConfigError::new(FIELD, format!("a key has 40 or 52 bytes, not {len}"))
}

impl Default for RssKey {
    /// [`RssKey::DEFAULT`].
    fn default() -> Self {
        RssKey::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const DESIGN_KEY: &str = "6d5a56da255b0ec2 4167253d43a38fb0 d0ca2bcbae7b30b4 \
                              77cb2da38030f20c 6a42b73bbeac01fa";

    #[test]
    fn default_key_matches_the_design_notes() {
        assert_eq!(RssKey::from_hex(DESIGN_KEY), Ok(RssKey::DEFAULT));
        assert_eq!(RssKey::DEFAULT.as_bytes().len(), 40);
        assert_eq!(RssKey::default().max_input_len(), 36);
    }

    #[rstest]
    #[case::prefix_and_colons("0x6d:5a")]
    #[case::upper_case("6D5A")]
    fn hex_separators_are_ignored(#[case] prefix: &str) {
        let text = format!("{prefix}{}", "6d5a".repeat(25));
        assert_eq!(RssKey::from_hex(&text), RssKey::symmetric(52));
    }

    #[rstest]
    #[case::odd_digits("6d5a5")]
    #[case::not_hex("6d5z")]
    #[case::too_short("6d5a")]
    #[case::too_long(&"00".repeat(53))]
    fn bad_hex_is_refused(#[case] text: &str) {
        assert_eq!(RssKey::from_hex(text).map_err(|e| e.field), Err(FIELD.to_owned()));
    }

    #[rstest]
    #[case(0)]
    #[case(39)]
    #[case(41)]
    #[case(64)]
    fn wrong_lengths_are_refused(#[case] len: usize) {
        let error = RssKey::new(&vec![0; len]).expect_err("bad length");
        assert_eq!(error.field, FIELD);
        assert!(error.reason.contains(&len.to_string()));
        assert_eq!(RssKey::symmetric(len).map_err(|e| e.field), Err(FIELD.to_owned()));
    }

    #[rstest]
    #[case(40)]
    #[case(52)]
    fn symmetric_key_repeats_6d5a(#[case] len: usize) {
        let key = RssKey::symmetric(len).expect("valid length");
        assert_eq!(key.as_bytes().len(), len);
        assert!(key.as_bytes().chunks(2).all(|pair| pair == [0x6d, 0x5a]));
        assert_eq!(key.max_input_len(), len - 4);
    }
}
