//! Recording a world's traffic: every port and queue, to pcapng.
//!
//! A [`Recording`] sets a [`BurstHook`] on the capture middleware every
//! host and bare port of a world sits behind (see [`crate::world::Port`]),
//! whatever its backend, in the spirit of DPDK's `rte_pdump`: each burst crossing the
//! port's wire end (the host's side of its bridge link) becomes records on
//! the interface named after the port (`server`), and each burst a stack
//! takes from or puts on a queue becomes records on `server/rxq<n>` or
//! `server/txq<n>`, with the direction as the port sees it. The wire end
//! sees what the bridge taps of that port would (frames as sent, before the
//! link's impairments; frames as received, after them), but through the
//! same hook and clock as the queues, so all records share one time base
//! and, within one instant of virtual time, the order in which things
//! happened. Times come from the clock the caller supplies: virtual time
//! under `sim`, monotonic time since the run's start under `threads`.
//!
//! Hooks copy the bytes and never hold a buffer, so pools return to their
//! baseline whether or not a recording is attached; [`Recording::finish`]
//! (or dropping the recording) removes the hooks. [`write_capture`] writes
//! records as pcapng or classic pcap through the capture crate.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use capture::{CapturePoint, Direction, Format, Record, WriteError};
use ethdev::mbuf::Mbuf;
use ethdev::middleware::{BurstHook, HookPoint};
use ethdev::time::Clock;
use ethdev::EthDev;

use crate::world::{Port, World};

/// Records shared by every hook of a recording, in the order they were seen.
struct Sink {
    clock: Arc<dyn Clock>,
    records: Mutex<Vec<Record>>,
}

/// The hook on one port: turns its bursts into records.
struct PortTap {
    port: String,
    sink: Arc<Sink>,
}

impl PortTap {
    /// The interface and direction of a hook point.
    fn interface(&self, point: HookPoint) -> (String, Direction) {
        match point {
            HookPoint::FromWire => (self.port.clone(), Direction::Inbound),
            HookPoint::ToWire => (self.port.clone(), Direction::Outbound),
            HookPoint::RxQueue(q) => (CapturePoint::RxQueue(self.port.clone(), q).to_string(), Direction::Inbound),
            HookPoint::TxQueue(q) => (CapturePoint::TxQueue(self.port.clone(), q).to_string(), Direction::Outbound),
        }
    }
}

impl BurstHook for PortTap {
    fn burst(&self, point: HookPoint, frames: &[Mbuf]) {
        let (interface, direction) = self.interface(point);
        let time = self.sink.clock.now();
        let copies = frames.iter().map(|m| Record::new(interface.clone(), Some(direction), time, m.data().to_vec()));
        self.sink.records.lock().unwrap_or_else(PoisonError::into_inner).extend(copies);
    }
}

/// A recording in progress on a world's hosts; see the module docs.
pub struct Recording {
    ports: Vec<Port>,
    sink: Arc<Sink>,
}

impl Recording {
    /// Starts recording every host and bare port of `world`, stamping
    /// records with `clock`. A port has one hook: attaching a second
    /// recording to the same world takes the ports over from the first.
    pub fn attach(world: &World, clock: Arc<dyn Clock>) -> Recording {
        let sink = Arc::new(Sink { clock, records: Mutex::new(Vec::new()) });
        let hosts = world.hosts.iter().map(|h| h.port.clone());
        let ports: Vec<Port> = hosts.chain(world.nics.iter().map(|n| n.port.clone())).collect();
        for port in &ports {
            let tap = PortTap { port: port.name().to_owned(), sink: Arc::clone(&sink) };
            port.set_burst_hook(Some(Arc::new(tap)));
        }
        Recording { ports, sink }
    }

    /// Stops recording and returns the records in time order (frames seen
    /// at the same instant keep the order they were seen in).
    pub fn finish(mut self) -> Vec<Record> {
        self.detach();
        let mut records = std::mem::take(&mut *self.sink.records.lock().unwrap_or_else(PoisonError::into_inner));
        records.sort_by_key(|r| r.time);
        records
    }

    fn detach(&mut self) {
        for port in self.ports.drain(..) {
            port.set_burst_hook(None);
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.detach();
    }
}

/// Why a capture could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The records could not be encoded.
    #[error("cannot encode the capture: {0}")]
    Encode(#[from] WriteError),
    /// The file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// Writes `records` to `path` as `format` (pcapng: one interface per
/// capture point, directions; classic pcap: neither).
pub fn write_capture(path: &Path, records: &[Record], format: Format) -> Result<(), RecordError> {
    let bytes = capture::to_bytes(records, format)?;
    std::fs::write(path, bytes).map_err(|source| RecordError::Io { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use stack::GroupConfig;
    use user_vbridge::Impairments;

    use super::*;
    use crate::exec::SimClock;

    fn world() -> World {
        let mut world = World::new(1).unwrap();
        let config = GroupConfig::new(1, [2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 1));
        world.add_host("h", config, Impairments::default()).unwrap();
        world
    }

    #[test]
    fn finishing_or_dropping_a_recording_removes_its_hooks() {
        let world = world();
        let port = &world.hosts[0].port;
        let recording = Recording::attach(&world, Arc::new(SimClock::default()));
        assert!(recording.finish().is_empty());
        assert!(port.set_burst_hook(None).is_none(), "finish removed the hook");
        drop(Recording::attach(&world, Arc::new(SimClock::default())));
        assert!(port.set_burst_hook(None).is_none(), "drop removed the hook");
    }

    #[test]
    fn a_capture_that_cannot_be_written_names_the_file() {
        let path = Path::new("/nonexistent-dir/x.pcapng");
        let err = write_capture(path, &[], Format::PcapNg).unwrap_err();
        assert!(err.to_string().starts_with("cannot write /nonexistent-dir/x.pcapng: "), "{err}");
    }
}
