//! A cable joining two wire ends directly, without a switch.

use ethdev::mbuf::Mbuf;
use ethdev::Wire;

/// Two wire ends joined back to back: what one transmits, the other
/// receives (a receiver whose link is down counts the frames as drops). Useful for peer-to-peer tests and for replaying into a port.
pub struct Cable<A: Wire, B: Wire> {
    a: A,
    b: B,
    buf: Vec<Mbuf>,
}

impl<A: Wire, B: Wire> Cable<A, B> {
    /// Joins `a` and `b`.
    pub fn new(a: A, b: B) -> Self {
        Cable { a, b, buf: Vec::with_capacity(64) }
    }

    /// Moves every frame waiting on either side across, in bursts of up to
    /// `burst`; returns how many frames moved.
    pub fn pump(&mut self, burst: usize) -> usize {
        let mut moved = 0;
        loop {
            let n = carry(&mut self.a, &mut self.b, &mut self.buf, burst)
                + carry(&mut self.b, &mut self.a, &mut self.buf, burst);
            if n == 0 {
                return moved;
            }
            moved += n;
        }
    }
}

fn carry(from: &mut impl Wire, to: &mut impl Wire, buf: &mut Vec<Mbuf>, burst: usize) -> usize {
    let n = from.take_tx(buf, burst);
    if n > 0 {
        to.put_rx(buf);
    }
    n
}
