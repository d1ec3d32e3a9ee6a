//! Who holds a buffer: owner ids, and the proof that one is dead.
//!
//! Every pool slot's owner word names who holds it (`mempool`). Owners are
//! 30-bit numbers; the pool keeps the top two bits of the word for itself.
//! Ids from [`FIRST_DOMAIN_OWNER`] up are handed out by a domain's control
//! channel (`shm::control`), one per process; the ids below are a process's
//! own to give its threads and stacks. A process may not allocate under a
//! domain id other than its own (`check_owner`), and only the control
//! channel can make a [`DeadOwner`], so reclaiming a dead owner's buffers
//! can never free one a live handle holds.

use std::sync::atomic::{AtomicU32, Ordering};

/// The bits of an owner word that name the owner.
pub(crate) const OWNER_MASK: u32 = (1 << 30) - 1;

/// Who holds an allocated buffer: a process, stack instance or port.
///
/// Owners are 30-bit numbers: the top two bits of a slot's owner word are
/// the pool's (higher bits of an owner are ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Owner(pub u32);

impl Owner {
    /// Buffers allocated without naming an owner.
    pub const NONE: Owner = Owner(0);
}

/// The owner id of a process the control channel saw exit: the only thing
/// `Mempool::reclaim` accepts, so nothing alive can be reclaimed.
///
/// Made only by `shm::control` for a peer of another pid whose pidfd said
/// it exited. Together with `check_owner` (no process allocates under a
/// domain owner id other than its own) this makes reclamation sound: no
/// `Mbuf` in this process can hold a slot whose word is a dead owner's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeadOwner(Owner);

impl DeadOwner {
    pub(crate) fn new(owner: Owner) -> DeadOwner {
        DeadOwner(owner)
    }

    /// The dead process's owner id.
    pub fn owner(&self) -> Owner {
        self.0
    }
}

/// The first owner id of those a domain's control channel assigns
/// (`shm::control`); lower ids are a process's own to use.
pub const FIRST_DOMAIN_OWNER: u32 = 0x10_0000;

/// This process's domain owner id, once a control channel gave it one.
static SELF_OWNER: AtomicU32 = AtomicU32::new(0);

/// Records the domain owner id this process was given; later ones replace it.
pub(crate) fn set_self_owner(owner: Owner) {
    SELF_OWNER.store(owner.0 & OWNER_MASK, Ordering::Release);
}

/// Refuses to hand a buffer out under a domain owner id that is not this
/// process's own: that id may be another process's, which reclamation
/// would free under the buffer. A programming error, so it panics.
pub(crate) fn check_owner(owner: Owner) {
    let id = owner.0 & OWNER_MASK;
    if id >= FIRST_DOMAIN_OWNER {
        let mine = SELF_OWNER.load(Ordering::Acquire);
        assert_eq!(id, mine, "owner {id:#x} is a domain owner id, and not this process's ({mine:#x})");
    }
}
