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

use std::collections::BTreeSet;

use ethdev::Instant;
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;

/// One TCP socket's place among a stack's socket sets (an index, reused
/// once its socket is removed).
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
    entries: Vec<Option<Entry>>,
    /// Indices of `entries` that are free.
    free: Vec<u32>,
    queue: BTreeSet<(Instant, Slot)>,
}

impl TcpSets {
    /// Adds `socket` in a set of its own, due at once.
    pub(crate) fn add(&mut self, socket: tcp::Socket<'static>, now: Instant) -> Slot {
        let mut set = SocketSet::new(Vec::with_capacity(1));
        let handle = set.add(socket);
        let entry = Some(Entry { set, handle, due: None });
        let slot = match self.free.pop() {
            Some(i) => {
                self.entries[i as usize] = entry;
                Slot(i)
            }
            None => {
                self.entries.push(entry);
                Slot(self.entries.len() as u32 - 1)
            }
        };
        self.wake(slot, now);
        slot
    }

    fn entry(&self, slot: Slot) -> Option<&Entry> {
        self.entries.get(slot.0 as usize).and_then(Option::as_ref)
    }

    fn entry_mut(&mut self, slot: Slot) -> Option<&mut Entry> {
        self.entries.get_mut(slot.0 as usize).and_then(Option::as_mut)
    }

    /// Removes the socket in `slot`.
    pub(crate) fn remove(&mut self, slot: Slot) {
        let Some(entry) = self.entries.get_mut(slot.0 as usize).and_then(Option::take) else { return };
        if let Some(t) = entry.due {
            self.queue.remove(&(t, slot));
        }
        self.free.push(slot.0);
    }

    /// The socket in `slot`. A slot is only used while its socket exists.
    pub(crate) fn get(&self, slot: Slot) -> &tcp::Socket<'static> {
        let e = self.entry(slot).expect("a slot is only used while its socket exists");
        e.set.get::<tcp::Socket>(e.handle)
    }

    /// The socket in `slot`, to change it: it is due for egress at `now`.
    pub(crate) fn get_mut(&mut self, slot: Slot, now: Instant) -> &mut tcp::Socket<'static> {
        self.wake(slot, now);
        let e = self.entry_mut(slot).expect("a slot is only used while its socket exists");
        e.set.get_mut::<tcp::Socket>(e.handle)
    }

    /// The set holding `slot`, for smoltcp's ingress or egress.
    pub(crate) fn set_mut(&mut self, slot: Slot) -> &mut SocketSet<'static> {
        &mut self.entry_mut(slot).expect("a slot is only used while its socket exists").set
    }

    /// Makes `slot` due at `now` at the latest.
    pub(crate) fn wake(&mut self, slot: Slot, now: Instant) {
        match self.entry(slot).map(|e| e.due) {
            Some(Some(t)) if t <= now => {}
            Some(_) => self.schedule(slot, Some(now)),
            None => {}
        }
    }

    /// Makes every socket due at `now`: a neighbour became known, and the
    /// sockets that waited for it may send.
    pub(crate) fn wake_all(&mut self, now: Instant) {
        for i in 0..self.entries.len() {
            self.wake(Slot(i as u32), now);
        }
    }

    /// Sets when `slot` is next due (`None`: when a frame or a call wakes it).
    pub(crate) fn schedule(&mut self, slot: Slot, due: Option<Instant>) {
        let Some(e) = self.entry_mut(slot) else { return };
        if let Some(t) = std::mem::replace(&mut e.due, due) {
            self.queue.remove(&(t, slot));
        }
        if let Some(t) = due {
            self.queue.insert((t, slot));
        }
    }

    /// When smoltcp next needs the socket in `slot`, asked of `iface`.
    pub(crate) fn poll_at(&self, slot: Slot, iface: &mut Interface, now: SmolInstant) -> Option<SmolInstant> {
        iface.poll_at(now, &self.entry(slot).expect("a slot is only used while its socket exists").set)
    }

    /// Takes the earliest socket due at `now`, if any; it leaves the queue
    /// until it is scheduled again.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Slot> {
        let &(t, slot) = self.queue.first()?;
        if t > now {
            return None;
        }
        self.queue.pop_first();
        if let Some(e) = self.entry_mut(slot) {
            e.due = None;
        }
        Some(slot)
    }

    /// The earliest deadline.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.queue.first().map(|&(t, _)| t)
    }
}
