//! Replaying a capture into a host, sans-IO, and comparing the result with
//! a golden trace.
//!
//! A [`Replayer`] is a port of its own on the world's bridge, a veth named
//! `replay<n>` in promiscuous mode, which sends the frames of a capture
//! into the bridge at their due times (a `ReplayPlan`, all at once or at
//! the recorded pace) and takes whatever the bridge delivers back to it.
//! The port itself lives in [`replayer`](crate::replayer), below the world
//! that holds and polls it; this module, above the world, chooses the
//! frames and attaches a replay to a world ([`Replayer::attach`]). The
//! frames replayed "into" a host are those the capture saw that host's port
//! receive (interface `<host>`, inbound), or every frame of a capture
//! without interface names (classic pcap); they keep their recorded MAC
//! addresses, so the bridge learns the recorded peers on the replay port,
//! forwards the frames to the host over the host's own link (impairments
//! included) as if they came from the wire, and sends the host's answers
//! back to the replay port. What the host did is seen by a
//! [`Recording`](crate::record::Recording) of the world, which is what the
//! golden trace is made of.
//!
//! The replayer holds no clock and no thread: the world polls it right
//! after the bridge, so the `sim` executor paces it in virtual time (the
//! `threads` executor refuses a world with replayers). Recorded pace
//! reproduces causality only if the capture's times show it: a
//! conversation recorded in virtual time over links without delay happens
//! in one instant, and replaying it "at the recorded pace" sends it all at
//! once, like the fast pace.
//!
//! A damaged capture (truncated, corrupt) is refused as a whole with the
//! byte offset of the damage ([`read_capture`]): a golden comparison of
//! half a replay would only mislead. [`check_golden`] compares a trace
//! with its golden file, or rewrites the file on request.

use std::io;
use std::path::Path;

use capture::{Direction, Pace, PartialRead, Record};
use etherparse::{SlicedPacket, TransportSlice};

use crate::world::World;

pub use crate::replayer::{ReplayError, ReplayStats, Replayer, MAX_FRAME};

/// Reads a pcap or pcapng file; a damaged file is an error naming the byte
/// offset of the damage.
pub fn read_capture(path: &Path) -> Result<Vec<Record>, ReplayError> {
    let bytes = std::fs::read(path).map_err(|source| ReplayError::Io { path: path.to_owned(), source })?;
    capture::read(&bytes).map_err(|PartialRead { records, error }| ReplayError::Damaged {
        path: path.to_owned(),
        error,
        before: records.len(),
    })
}

/// The frames of `records` to replay into the host whose port is `port`:
/// those seen received on interface `port` (inbound or of unknown
/// direction), or all of them when no record names an interface.
pub fn inbound_frames(records: &[Record], port: &str) -> Result<Vec<Record>, ReplayError> {
    if records.iter().all(|r| r.interface.is_none()) {
        return Ok(records.to_vec());
    }
    let selected: Vec<Record> = records
        .iter()
        .filter(|r| r.interface.as_deref() == Some(port) && r.direction != Some(Direction::Outbound))
        .cloned()
        .collect();
    if selected.is_empty() {
        let mut interfaces: Vec<String> = records.iter().filter_map(|r| r.interface.clone()).collect();
        interfaces.sort();
        interfaces.dedup();
        return Err(ReplayError::NoFrames { port: port.to_owned(), interfaces });
    }
    Ok(selected)
}

/// The port the first TCP connection request (SYN without ACK) among
/// `frames` asks for: where the host should listen to answer a replay.
pub fn first_listen_port(frames: &[Record]) -> Option<u16> {
    frames.iter().find_map(|r| match SlicedPacket::from_ethernet(&r.data).ok()?.transport? {
        TransportSlice::Tcp(tcp) if tcp.syn() && !tcp.ack() => Some(tcp.destination_port()),
        _ => None,
    })
}

/// Adding a replay to a world (the [`Replayer`] itself, the port that
/// injects, lives in [`replayer`](crate::replayer), below the world).
impl Replayer {
    /// Adds a replay of the frames `records` saw host `into` receive
    /// (see [`inbound_frames`]) to `world`, as a new bridge port without
    /// impairments; returns its index in `world.replayers`. The replay
    /// starts at the first poll, or at the first poll after
    /// [`Replayer::start_after`]'s latch opens.
    pub fn attach(world: &mut World, records: &[Record], into: usize, pace: Pace) -> Result<usize, ReplayError> {
        let host = world.hosts.get(into).ok_or_else(|| ReplayError::UnknownHost {
            name: format!("#{into}"),
            hosts: world.hosts.iter().map(|h| h.name.clone()).collect(),
        })?;
        let frames = inbound_frames(records, &host.name)?;
        let name = format!("replay{}", world.replayers.len());
        world.replayers.push(Replayer::new(name, &mut world.bridge, frames, pace)?);
        Ok(world.replayers.len() - 1)
    }
}

/// How a trace compared with its golden file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Golden {
    /// The trace is the golden text.
    Matches,
    /// The golden file was (re)written with the trace.
    Updated,
    /// The trace differs; the text says where.
    Differs(String),
}

/// Compares `trace` with the golden file at `path`, or writes the file
/// when `update` is set.
pub fn check_golden(path: &Path, trace: &str, update: bool) -> Result<Golden, ReplayError> {
    let io_error = |source| ReplayError::Io { path: path.to_owned(), source };
    if update {
        std::fs::write(path, trace).map_err(io_error)?;
        return Ok(Golden::Updated);
    }
    let golden = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ReplayError::GoldenMissing { path: path.to_owned() })
        }
        Err(e) => return Err(io_error(e)),
    };
    Ok(match first_difference(&golden, trace) {
        None => Golden::Matches,
        Some(diff) => Golden::Differs(diff),
    })
}

/// Where two traces first differ, or `None` if they are equal.
fn first_difference(expected: &str, actual: &str) -> Option<String> {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let at = e.iter().zip(&a).position(|(x, y)| x != y).unwrap_or(e.len().min(a.len()));
    if at == e.len() && at == a.len() {
        return None;
    }
    let line = |v: &[&str]| v.get(at).map_or("(end of trace)".to_owned(), |l| l.to_string());
    Some(format!(
        "line {} differs (golden has {} lines, trace has {}):\n  expected: {}\n  actual:   {}",
        at + 1,
        e.len(),
        a.len(),
        line(&e),
        line(&a)
    ))
}

#[cfg(test)]
mod tests {
    use ethdev::Instant;

    use super::*;

    #[test]
    fn first_difference_names_the_line_and_both_sides() {
        assert_eq!(first_difference("a\nb\n", "a\nb\n"), None);
        let diff = first_difference("a\nb\nc\n", "a\nx\nc\n").unwrap();
        assert!(diff.starts_with("line 2 differs"), "{diff}");
        assert!(diff.contains("expected: b") && diff.contains("actual:   x"), "{diff}");
        let shorter = first_difference("a\nb\n", "a\n").unwrap();
        assert!(shorter.contains("actual:   (end of trace)"), "{shorter}");
    }

    #[test]
    fn the_listen_port_is_the_first_connection_requests() {
        let tcp = |port: u16, ack: bool| {
            let builder = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64);
            let builder = builder.tcp(49152, port, 1, 1000).syn();
            let mut frame = Vec::new();
            if ack {
                builder.ack(1).write(&mut frame, &[]).unwrap();
            } else {
                builder.write(&mut frame, &[]).unwrap();
            }
            Record::bare(Instant::ZERO, frame)
        };
        let frames = [Record::bare(Instant::ZERO, vec![0; 10]), tcp(80, true), tcp(5202, false), tcp(7, false)];
        assert_eq!(first_listen_port(&frames), Some(5202));
        assert_eq!(first_listen_port(&frames[..2]), None);
    }

    #[test]
    fn inbound_frames_pick_the_hosts_received_frames() {
        let t = Instant::ZERO;
        let records = vec![
            Record::new("server", Some(Direction::Inbound), t, vec![1]),
            Record::new("server", Some(Direction::Outbound), t, vec![2]),
            Record::new("server/rxq0", Some(Direction::Inbound), t, vec![3]),
            Record::new("client", Some(Direction::Inbound), t, vec![4]),
            Record::new("server", None, t, vec![5]),
        ];
        let data = |rs: Vec<Record>| rs.into_iter().map(|r| r.data[0]).collect::<Vec<_>>();
        assert_eq!(data(inbound_frames(&records, "server").unwrap()), [1, 5]);
        let bare = vec![Record::bare(t, vec![7]), Record::bare(t, vec![8])];
        assert_eq!(data(inbound_frames(&bare, "server").unwrap()), [7, 8]);
        let err = inbound_frames(&records, "nobody").unwrap_err().to_string();
        assert!(err.contains("\"nobody\"") && err.contains("client, server, server/rxq0"), "{err}");
    }
}
