//! Record, then replay: a recorded conversation replayed into a fresh copy
//! of its server makes the server say the same things again, at the
//! recorded pace or all at once, and a damaged capture is refused with the
//! byte offset of the damage.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use capture::{Format, Pace, Reader, Record};
use ethdev::Instant;
use scenario::tcp_run::SERVER_PORT;
use sim::apps::{echo, listen, ping, Ledger};
use sim::exec::{self, SimClock, Spawner};
use sim::latch::Latch;
use sim::record::Recording;
use sim::replay::{read_capture, ReplayError, Replayer, MAX_FRAME};
use sim::world::World;
use stack::{Api, GroupConfig, StackGroup};
use user_vbridge::Impairments;

const SEED: u64 = 7;
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The client's link delay: it spreads the conversation over virtual time,
/// so that the recorded times show what answered what.
const CLIENT_DELAY: Duration = Duration::from_micros(100);

/// A simulated run: a world with host `server` of `stacks` stacks (plus a
/// client, for the original runs), its clock and its tasks.
struct Sim {
    world: World,
    sim_clock: Arc<SimClock>,
    clock: Arc<dyn stack::Clock>,
    spawner: Spawner,
}

impl Sim {
    fn new(stacks: usize, with_client: bool) -> Sim {
        let mut world = World::new(SEED).unwrap();
        let server = GroupConfig { seed: SEED, ..GroupConfig::new(stacks, SERVER_MAC, SERVER_IP) };
        world.add_host("server", server, Impairments::default()).unwrap();
        if with_client {
            let client = GroupConfig { seed: SEED + 1, ..GroupConfig::new(2, CLIENT_MAC, CLIENT_IP) };
            let delay = Impairments { delay: CLIENT_DELAY, ..Impairments::default() };
            world.add_host("client", client, delay).unwrap();
        }
        let sim_clock = Arc::new(SimClock::default());
        Sim { world, clock: sim_clock.clone(), sim_clock, spawner: Spawner::new() }
    }

    fn group(&self, host: usize) -> StackGroup {
        self.world.hosts[host].group.clone()
    }

    /// A TCP echo listener on every stack of the server, gazelle RSS style;
    /// the latch opens once all listen.
    fn echo_servers(&self) -> Arc<Latch> {
        let group = self.group(0);
        let listening = Latch::new(group.len());
        for home in 0..group.len() {
            let api = Api::new(&group, home, Arc::clone(&self.clock));
            let (spawner, listening) = (self.spawner.clone(), Arc::clone(&listening));
            self.spawner.spawn_daemon(home, format!("echo@{home}"), async move {
                let fd = listen(&api, SERVER_PORT).await?;
                listening.count_down();
                echo::server(api, fd, spawner, home, Arc::new(Ledger::default())).await
            });
        }
        listening
    }

    /// Replays what `records` saw the server receive, once `gate` opens.
    fn replay(&mut self, records: &[Record], pace: Pace, gate: Option<Arc<Latch>>) {
        let index = Replayer::attach(&mut self.world, records, 0, pace).unwrap();
        let replayer = &mut self.world.replayers[index];
        if let Some(gate) = gate {
            replayer.start_after(gate);
        }
        self.spawner.spawn(0, "replay", replayer.waiter());
    }

    /// Runs to the end recording every host; checks that every task
    /// finished, accounting closes and every buffer is back.
    fn run(mut self) -> Vec<Record> {
        let recording = Recording::attach(&self.world, Arc::clone(&self.clock));
        let deadline = Instant::from_secs(60);
        let outcome = exec::sim::run(&mut self.world, &self.sim_clock, &self.spawner, deadline, Duration::from_secs(5));
        outcome.ok().unwrap();
        let records = recording.finish();
        self.world.check_accounting().unwrap();
        assert_eq!(self.world.buffers_in_use(), 0, "buffers leaked");
        records
    }
}

/// Two echo connections of 6000 bytes from the client to a 4-stack server.
fn echo_conversation() -> Vec<Record> {
    let sim = Sim::new(4, true);
    let listening = sim.echo_servers();
    let server = SocketAddr::new(IpAddr::V4(SERVER_IP), SERVER_PORT);
    for id in 0..2 {
        let api = Api::new(&sim.group(1), id as usize % 2, Arc::clone(&sim.clock));
        let listening = Arc::clone(&listening);
        sim.spawner.spawn(8 + id as usize, format!("client {id}"), async move {
            listening.wait().await;
            echo::client(api, server, id, 6000, Arc::new(Ledger::default())).await
        });
    }
    sim.run()
}

/// The echo conversation's server input replayed into a fresh server.
fn echo_replay(recorded: &[Record]) -> Vec<Record> {
    let mut sim = Sim::new(4, false);
    let listening = sim.echo_servers();
    sim.replay(recorded, Pace::Recorded, Some(listening));
    sim.run()
}

/// The records of the server's port and queues.
fn servers(records: &[Record]) -> Vec<Record> {
    records.iter().filter(|r| r.interface.as_deref().is_some_and(|i| i.starts_with("server"))).cloned().collect()
}

#[test]
fn replaying_the_servers_input_reproduces_its_output_byte_for_byte() {
    let recorded = echo_conversation();
    let replayed = echo_replay(&recorded);
    let expected = servers(&recorded);
    assert!(expected.iter().any(|r| r.interface.as_deref() == Some("server/txq3")), "every queue is captured");
    let trace = capture::trace_text(&servers(&replayed));
    assert_eq!(trace, capture::trace_text(&expected));
    let times = |rs: &[Record]| rs.iter().map(|r| r.time.since(rs[0].time)).collect::<Vec<_>>();
    assert_eq!(times(&servers(&replayed)), times(&expected), "same times relative to the first frame");
    insta::assert_snapshot!("echo_replay", trace);
    let again = echo_replay(&recorded);
    let bytes = |rs: &[Record]| capture::to_bytes(rs, Format::PcapNg).unwrap();
    assert_eq!(bytes(&again), bytes(&replayed), "a replay in sim is byte-identical every time");
}

/// Five pings from the client to a one-stack server.
fn pings() -> Vec<Record> {
    let sim = Sim::new(1, true);
    let api = Api::new(&sim.group(1), 0, Arc::clone(&sim.clock));
    sim.spawner.spawn(0, "ping", async move { ping::ping(api, IpAddr::V4(SERVER_IP), 9, 5).await.map(|_| ()) });
    sim.run()
}

/// Trace lines without number and time, grouped by interface and direction.
fn content(records: &[Record]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in capture::trace_lines(records) {
        let fields: Vec<&str> = line.splitn(5, ' ').collect();
        out.entry(format!("{} {}", fields[2], fields[3])).or_default().push(fields[4].to_owned());
    }
    out
}

#[test]
fn fast_and_recorded_paces_draw_the_same_answers_at_different_times() {
    let recorded = pings();
    let server = |rs: &[Record]| rs.iter().filter(|r| r.interface.as_deref() == Some("server")).cloned().collect();
    let original: Vec<Record> = server(&recorded);
    let replay = |pace| {
        let mut sim = Sim::new(1, false);
        sim.replay(&recorded, pace, None);
        server(&sim.run())
    };
    let (paced, fast) = (replay(Pace::Recorded), replay(Pace::AsFastAsPossible));
    assert_eq!(content(&original)["server out"].len(), 6, "an ARP reply and five echo replies");
    assert_eq!(capture::trace_text(&paced), capture::trace_text(&original), "recorded pace: same frames, same times");
    assert_eq!(content(&fast), content(&original), "fast: the same frames in and out, in the same order");
    let span = |rs: &[Record]| rs.last().unwrap().time.since(rs[0].time);
    assert!(span(&original) >= CLIENT_DELAY * 10, "the pings took time: {:?}", span(&original));
    assert!(span(&fast) < CLIENT_DELAY, "fast: one burst, answered at once: {:?}", span(&fast));
}

/// (offset, record) of every frame of a capture.
fn offsets(bytes: &[u8]) -> Vec<u64> {
    let mut reader = Reader::new(bytes).unwrap();
    let mut out = Vec::new();
    loop {
        let at = reader.offset();
        match reader.next() {
            Some(Ok(_)) => out.push(at),
            _ => return out,
        }
    }
}

#[test]
fn damaged_captures_are_refused_with_the_byte_offset() {
    let recorded = pings();
    let dir = std::env::temp_dir().join(format!("dtnet-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for format in [Format::PcapNg, Format::Pcap] {
        let bytes = capture::to_bytes(&recorded, format).unwrap();
        let at = offsets(&bytes)[5];
        let path = dir.join(format!("cut-{format:?}"));
        std::fs::write(&path, &bytes[..at as usize + 20]).unwrap();
        let err = read_capture(&path).unwrap_err();
        assert!(matches!(&err, ReplayError::Damaged { error, before: 5, .. } if error.offset == at), "{err}");
        let message = err.to_string();
        assert!(message.contains(&format!("byte offset {at}")) && message.contains("refusing"), "{message}");
    }
    let mut bytes = capture::to_bytes(&recorded, Format::PcapNg).unwrap();
    let at = offsets(&bytes)[2] as usize;
    bytes[at + 4..at + 8].copy_from_slice(&3u32.to_le_bytes());
    let path = dir.join("corrupt.pcapng");
    std::fs::write(&path, &bytes).unwrap();
    let message = read_capture(&path).unwrap_err().to_string();
    assert!(message.contains(&format!("byte offset {at}")), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn replays_that_cannot_be_made_say_why() {
    let mut sim = Sim::new(1, false);
    let frame = Record::bare(Instant::ZERO, vec![0; MAX_FRAME + 1]);
    let err = Replayer::attach(&mut sim.world, &[frame], 0, Pace::Recorded).unwrap_err();
    assert!(matches!(err, ReplayError::FrameTooLong { index: 0, .. }), "{err}");
    let err = Replayer::attach(&mut sim.world, &[], 3, Pace::Recorded).unwrap_err();
    assert_eq!(err.to_string(), "no host \"#3\" to replay into (hosts: server)");
    let named = Record::new("client", Some(capture::Direction::Inbound), Instant::ZERO, vec![0; 60]);
    let err = Replayer::attach(&mut sim.world, &[named], 0, Pace::Recorded).unwrap_err();
    assert!(err.to_string().contains("no frame received on interface \"server\" (interfaces: client)"), "{err}");
    assert!(sim.world.replayers.is_empty());
}

/// No thread of the threads executor polls a replay port, so it refuses a
/// world with one before starting, saying why, instead of running until
/// its timeout while the replay never starts.
#[test]
fn the_threads_executor_refuses_a_world_with_a_replay() {
    let mut sim = Sim::new(1, false);
    let frame = Record::bare(Instant::ZERO, vec![0; 60]);
    let index = Replayer::attach(&mut sim.world, &[frame], 0, Pace::AsFastAsPossible).unwrap();
    sim.spawner.spawn(0, "replay", sim.world.replayers[index].waiter());
    let refused = exec::threads::run(&mut sim.world, &sim.spawner, Duration::from_secs(60), Duration::ZERO);
    assert_eq!(refused.as_ref().err(), Some(&exec::threads::Refusal::Replayers(1)));
    let message = refused.err().unwrap().to_string();
    assert!(message.contains("cannot run a world with 1 replayer(s)") && message.contains("sim executor"), "{message}");
    assert_eq!(sim.world.replayers[index].stats().injected, 0);
    assert_eq!(sim.world.buffers_in_use(), 0);
}
