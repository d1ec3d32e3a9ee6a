//! The messages the samples exchange: self-checking, so a receiver can tell
//! a lost, repeated, reordered or damaged message from a good one.
//!
//! A message is `sender` (one byte), `seq` (u32, big-endian) and a payload
//! of 16 to 79 bytes whose every byte is a function of sender, seq and
//! position. A receiver expects each sender's sequence numbers to arrive
//! in order, starting from 0.

use ethdev::Mbuf;

/// Bytes before the payload.
const HEAD: usize = 5;

/// Payload length of message `seq`.
fn payload_len(seq: u32) -> usize {
    16 + (seq % 64) as usize
}

fn payload_byte(sender: u8, seq: u32, i: usize) -> u8 {
    (seq as usize).wrapping_mul(31).wrapping_add(i * 7).wrapping_add(usize::from(sender)) as u8
}

/// Writes message `seq` of `sender` into `mbuf`; `false` if it does not fit.
pub fn write(mbuf: &mut Mbuf, sender: u8, seq: u32) -> bool {
    let len = payload_len(seq);
    let Some(out) = mbuf.append(HEAD + len) else { return false };
    out[0] = sender;
    out[1..HEAD].copy_from_slice(&seq.to_be_bytes());
    for (i, byte) in out[HEAD..].iter_mut().enumerate() {
        *byte = payload_byte(sender, seq, i);
    }
    true
}

/// What a receiver knows: the next sequence number it expects per sender.
#[derive(Clone, Debug, Default)]
pub struct Checker {
    next: std::collections::BTreeMap<u8, u32>,
    /// Messages that arrived intact and in order.
    pub good: u64,
    /// Messages that were damaged, out of order or from an unknown sender.
    pub bad: u64,
}

impl Checker {
    /// Checks one message; returns whether it was the expected one, intact.
    pub fn check(&mut self, data: &[u8]) -> bool {
        let ok = self.parse(data).is_some();
        if ok {
            self.good += 1
        } else {
            self.bad += 1
        }
        ok
    }

    fn parse(&mut self, data: &[u8]) -> Option<()> {
        let (&sender, rest) = data.split_first()?;
        let seq = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
        let next = self.next.entry(sender).or_default();
        let payload = &data[HEAD..];
        let intact = seq == *next
            && payload.len() == payload_len(seq)
            && payload.iter().enumerate().all(|(i, &b)| b == payload_byte(sender, seq, i));
        intact.then(|| *next += 1)
    }

    /// Messages received intact from `sender`.
    pub fn received_from(&self, sender: u8) -> u32 {
        self.next.get(&sender).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ethdev::{Mempool, MempoolConfig, Owner};

    #[test]
    fn messages_check_in_order_and_damage_is_caught() {
        let pool = Mempool::new(MempoolConfig::new("m", 4).data_room(256)).unwrap();
        let mut checker = Checker::default();
        for seq in 0..3 {
            let mut m = pool.alloc(Owner(1)).unwrap();
            assert!(write(&mut m, 7, seq));
            assert!(checker.check(m.data()));
        }
        let mut m = pool.alloc(Owner(1)).unwrap();
        write(&mut m, 7, 4);
        assert!(!checker.check(m.data()), "seq 3 was skipped");
        let mut m = pool.alloc(Owner(1)).unwrap();
        write(&mut m, 7, 3);
        m.data_mut()[9] ^= 1;
        assert!(!checker.check(m.data()), "a flipped bit");
        assert!(!checker.check(&[1, 2]), "too short");
        assert_eq!((checker.good, checker.bad, checker.received_from(7)), (3, 3, 3));
    }
}
