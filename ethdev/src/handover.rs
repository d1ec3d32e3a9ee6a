//! Taking over the reading side of a ring whose consumer died.
//!
//! A ring of [`MbufRef`] words between processes holds two kinds of word
//! when its consumer is killed: words naming buffers still in transit (the
//! consumer never took them), and words naming buffers it had claimed but
//! not yet released from the ring (`ShmConsumer::consume` claims before it
//! publishes its tail). The second kind must leave the ring before the pool
//! frees the dead consumer's buffers: once freed and reallocated, such a
//! slot's word would name somebody else's buffer. Whoever takes over (the
//! primary, knowing the consumer is dead) reads every word with a claim,
//! which refuses the second kind, and then either frees what it claimed
//! ([`drain`]) or, being the ring's producer, puts it back in order for
//! the consumer's heir ([`requeue`]).

use crate::mbuf::Mbuf;
use crate::mempool::{MbufRef, Owner, PoolTable};
use crate::shm::ring::{ShmConsumer, ShmProducer};
use crate::shm::{ShmError, Zone};

/// What a takeover found in a ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Takeover {
    /// Buffers still in transit: freed by [`drain`], put back by [`requeue`].
    pub in_transit: usize,
    /// Words naming no buffer in transit (the dead consumer's claimed
    /// buffers, or garbage), removed.
    pub stale: usize,
}

/// Reads ring `zone` to the end as its new consumer, claiming each buffer
/// in transit for `owner`.
fn take_all(zone: &Zone, table: &PoolTable, owner: Owner) -> Result<(Vec<Mbuf>, usize), ShmError> {
    let mut ring = ShmConsumer::attach(zone)?;
    let mut frames = Vec::new();
    let words = ring.consume(usize::MAX, |word| frames.extend(table.claim(MbufRef::from_word(word), owner).ok()));
    let stale = words - frames.len();
    Ok((frames, stale))
}

/// Empties ring `zone` and frees every buffer in transit in it.
pub fn drain(zone: &Zone, table: &PoolTable, owner: Owner) -> Result<Takeover, ShmError> {
    let (frames, stale) = take_all(zone, table, owner)?;
    Ok(Takeover { in_transit: frames.len(), stale })
}

/// Empties ring `zone`, whose producer `producer` is (this process), and
/// puts the buffers in transit back in their order, pool number `pool` of
/// the consumer's table, for the next consumer.
pub fn requeue(
    zone: &Zone,
    producer: &mut ShmProducer,
    table: &PoolTable,
    owner: Owner,
    pool: u16,
) -> Result<Takeover, ShmError> {
    let (frames, stale) = take_all(zone, table, owner)?;
    let words: Vec<u64> = frames.into_iter().map(|m| m.into_ref(pool).to_word()).collect();
    let kept = producer.enqueue_burst(&words);
    // The ring just gave up every word, so only a consumer writing a tail
    // it never reached leaves too little room: free the rest.
    for &word in &words[kept..] {
        drop(table.claim(MbufRef::from_word(word), owner));
    }
    Ok(Takeover { in_transit: kept, stale: stale + words.len() - kept })
}
