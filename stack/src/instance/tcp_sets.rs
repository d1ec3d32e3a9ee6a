//! A stack's TCP sockets, each in a smoltcp socket set of its own, with a
//! queue of when each next needs smoltcp's egress.
//!
//! smoltcp looks up the socket of a received segment by trying every socket
//! of the set it is given, and its egress and `poll_at` visit every socket
//! too, so with one set per stack each frame and each poll cost time in
//! proportion to the connections: a C10K run is quadratic. Here each TCP
//! socket gets a set of one. The instance finds a segment's socket in its
//! own connection index and hands smoltcp just that socket's set; a socket
//! is polled for egress only when it is due, at the deadline smoltcp gave
//! for it ([`Interface::poll_at`] on its set) or at once after a frame or
//! an application call touched it. The queue is ordered by deadline, then
//! by slot number, so which socket transmits first depends on nothing but
//! the run itself.

use std::collections::{BTreeSet, HashMap};

use ethdev::Instant;
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;

/// One TCP socket's place among a stack's socket sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Slot(u32);

struct Entry {
    set: SocketSet<'static>,
    handle: SocketHandle,
    /// When the socket next needs egress; `None` while it waits for a frame.
    due: Option<Instant>,
}

/// The TCP sockets of one stack. See the module documentation.
#[derive(Default)]
pub(crate) struct TcpSets {
    entries: HashMap<Slot, Entry>,
    next: u32,
    queue: BTreeSet<(Instant, Slot)>,
}

impl TcpSets {
    /// Adds `socket` in a set of its own, due at once.
    pub(crate) fn add(&mut self, socket: tcp::Socket<'static>, now: Instant) -> Slot {
        let mut set = SocketSet::new(Vec::with_capacity(1));
        let handle = set.add(socket);
        let slot = Slot(self.next);
        self.next += 1;
        self.entries.insert(slot, Entry { set, handle, due: None });
        self.wake(slot, now);
        slot
    }

    /// Removes the socket in `slot`.
    pub(crate) fn remove(&mut self, slot: Slot) {
        if let Some(Entry { due: Some(t), .. }) = self.entries.remove(&slot) {
            self.queue.remove(&(t, slot));
        }
    }

    /// The socket in `slot`. A slot is only used while its socket exists.
    pub(crate) fn get(&self, slot: Slot) -> &tcp::Socket<'static> {
        let e = &self.entries[&slot];
        e.set.get::<tcp::Socket>(e.handle)
    }

    /// The socket in `slot`, to change it: it is due for egress at `now`.
    pub(crate) fn get_mut(&mut self, slot: Slot, now: Instant) -> &mut tcp::Socket<'static> {
        self.wake(slot, now);
        let e = self.entries.get_mut(&slot).expect("a slot is only used while its socket exists");
        e.set.get_mut::<tcp::Socket>(e.handle)
    }

    /// The set holding `slot`, for smoltcp's ingress or egress.
    pub(crate) fn set_mut(&mut self, slot: Slot) -> &mut SocketSet<'static> {
        &mut self.entries.get_mut(&slot).expect("a slot is only used while its socket exists").set
    }

    /// Makes `slot` due at `now` at the latest.
    pub(crate) fn wake(&mut self, slot: Slot, now: Instant) {
        match self.entries.get(&slot).map(|e| e.due) {
            Some(Some(t)) if t <= now => {}
            Some(_) => self.schedule(slot, Some(now)),
            None => {}
        }
    }

    /// Makes every socket due at `now`: a neighbour became known, and the
    /// sockets that waited for it may send.
    pub(crate) fn wake_all(&mut self, now: Instant) {
        let slots: Vec<Slot> = self.entries.keys().copied().collect();
        slots.into_iter().for_each(|slot| self.wake(slot, now));
    }

    /// Sets when `slot` is next due (`None`: when a frame or a call wakes it).
    pub(crate) fn schedule(&mut self, slot: Slot, due: Option<Instant>) {
        let Some(e) = self.entries.get_mut(&slot) else { return };
        if let Some(t) = std::mem::replace(&mut e.due, due) {
            self.queue.remove(&(t, slot));
        }
        if let Some(t) = due {
            self.queue.insert((t, slot));
        }
    }

    /// When smoltcp next needs the socket in `slot`, asked of `iface`.
    pub(crate) fn poll_at(&self, slot: Slot, iface: &mut Interface, now: SmolInstant) -> Option<SmolInstant> {
        iface.poll_at(now, &self.entries[&slot].set)
    }

    /// Takes the sockets due at `now`, earliest first; each leaves the
    /// queue until it is scheduled again.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<Slot> {
        let mut due = Vec::new();
        while let Some(&(t, slot)) = self.queue.first() {
            if t > now {
                break;
            }
            self.queue.pop_first();
            if let Some(e) = self.entries.get_mut(&slot) {
                e.due = None;
            }
            due.push(slot);
        }
        due
    }

    /// The earliest deadline.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.queue.first().map(|&(t, _)| t)
    }
}
