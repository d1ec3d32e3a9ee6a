//! Linux's accept-queue semantics (`tcp_abort_on_overflow = 0`): a burst of
//! 1000 simultaneous connects to four RSS listeners with a backlog of 64
//! each. While an accept queue is full the server's stacks drop the SYNs
//! and the handshakes' last segments they have no room for and count them
//! (`backlog_drops`, Linux's `ListenOverflows`); retransmissions complete
//! every connection later, and none is refused.
//! Everything runs in virtual time over a cable between two veth ports, so
//! a second run gives the same counters at the same virtual instant.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ethdev::mempool::{Mempool, MempoolConfig};
use ethdev::{EthDev, Instant};
use stack::{Api, BufSizes, Fd, GroupConfig, SockOpt, SockType, StackGroup, StackStats};
use user_veth::{Cable, Veth, VethPort, VethWire};

const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PORT: u16 = 80;
const CONNS: usize = 1000;
/// Per listener: the four hold a quarter of the burst at most.
const BACKLOG: usize = 64;
/// Virtual time the burst must complete in.
const DEADLINE: Duration = Duration::from_secs(120);

#[derive(Default)]
struct TestClock(AtomicU64);

impl stack::Clock for TestClock {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.0.load(Ordering::Acquire))
    }
}

type Task = Pin<Box<dyn Future<Output = ()>>>;

/// Two hosts on a cable, their applications as tasks, all in virtual time.
struct World {
    pool: Mempool,
    ports: [VethPort; 2],
    cable: Cable<VethWire, VethWire>,
    groups: [StackGroup; 2],
    clock: Arc<TestClock>,
}

impl World {
    fn new(server_stacks: usize, client_stacks: usize) -> World {
        let pool = Mempool::new(MempoolConfig::new("backlog", 16 * 1024)).unwrap();
        let clock = Arc::new(TestClock::default());
        let host = |name: &str, mac: [u8; 6], ip, stacks| {
            let (port, wire) = Veth::new(name, mac, pool.clone());
            let mut config = GroupConfig::new(stacks, mac, ip);
            config.bufs = BufSizes { rx: 4096, tx: 4096 };
            let group = StackGroup::new(Arc::new(port.clone()), pool.clone(), config).unwrap();
            (port, wire, group)
        };
        let (sport, swire, server) = host("server", SERVER_MAC, SERVER_IP, server_stacks);
        let (cport, cwire, client) = host("client", CLIENT_MAC, CLIENT_IP, client_stacks);
        World { pool, ports: [sport, cport], cable: Cable::new(swire, cwire), groups: [server, client], clock }
    }

    fn api(&self, group: usize, home: usize) -> Api {
        Api::new(&self.groups[group], home, self.clock.clone())
    }

    fn now(&self) -> Instant {
        stack::Clock::now(&*self.clock)
    }

    /// Carries frames across and polls every stack once; true if anything
    /// moved. The applications run between two steps, as they would
    /// between two polls of a run-to-wakeup stack.
    fn step(&mut self) -> bool {
        let now = self.now();
        let mut busy = self.cable.pump(256) > 0;
        for g in &self.groups {
            for i in 0..g.len() {
                busy |= g.poll(i, now);
            }
        }
        busy
    }

    /// Moves the clock to the next stack deadline (at least 1 ms on).
    fn advance(&mut self) {
        let now = self.now();
        let next = self.groups.iter().flat_map(|g| (0..g.len()).filter_map(|i| g.poll_at(i))).min();
        let step = match next {
            Some(t) if t > now => t.as_nanos() - now.as_nanos(),
            _ => Duration::from_millis(1).as_nanos() as u64,
        };
        self.clock.0.fetch_add(step, Ordering::AcqRel);
    }

    /// Runs `tasks` until all finish, polling the stacks between rounds and
    /// moving virtual time on when nothing else moves.
    fn run(&mut self, mut tasks: Vec<Task>, what: &str) {
        let mut cx = Context::from_waker(Waker::noop());
        let start = self.now();
        while !tasks.is_empty() {
            let before = tasks.len();
            tasks.retain_mut(|t| t.as_mut().poll(&mut cx).is_pending());
            let moved = self.step() || tasks.len() < before;
            if !moved {
                self.advance();
            }
            let spent = Duration::from_nanos(self.now().as_nanos() - start.as_nanos());
            let server = self.stats(0);
            assert!(
                spent < DEADLINE,
                "{what}: {} tasks unfinished after {spent:?} of virtual time: {server:?}",
                tasks.len()
            );
        }
    }

    fn stats(&self, group: usize) -> Vec<StackStats> {
        (0..self.groups[group].len()).map(|i| self.groups[group].stats(i)).collect()
    }
}

/// Runs `fut` unless `done` holds first (checked on every poll): `None`
/// then.
async fn unless<T>(done: impl Fn() -> bool, fut: impl Future<Output = T>) -> Option<T> {
    let mut fut = pin!(fut);
    std::future::poll_fn(|cx| if done() { Poll::Ready(None) } else { fut.as_mut().poll(cx).map(Some) }).await
}

async fn listener(api: &Api, backlog: usize) -> Fd {
    let fd = api.socket(SockType::Stream).unwrap();
    api.setsockopt(fd, SockOpt::ReuseAddr(true)).await.unwrap();
    api.bind(fd, SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT)).await.unwrap();
    api.listen(fd, backlog).await.unwrap();
    fd
}

/// What one run of the burst saw.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    refused: usize,
    accepted: usize,
    server: Vec<StackStats>,
    client: Vec<StackStats>,
    finished_at: Instant,
}

/// `CONNS` connects at one virtual instant to one listener per server
/// stack; the server accepts one connection per listener between two polls
/// of its stacks, so the queues overflow.
fn burst() -> Outcome {
    let mut world = World::new(4, 2);
    let servers: Vec<Api> = (0..4).map(|i| world.api(0, i)).collect();
    let listeners: Rc<RefCell<Vec<Option<Fd>>>> = Rc::new(RefCell::new(vec![None; servers.len()]));
    let setup: Vec<Task> = servers
        .iter()
        .enumerate()
        .map(|(i, api)| {
            let (api, listeners) = (api.clone(), listeners.clone());
            Box::pin(async move {
                let fd = listener(&api, BACKLOG).await;
                listeners.borrow_mut()[i] = Some(fd);
            }) as Task
        })
        .collect();
    world.run(setup, "listen");
    let listeners: Vec<Fd> = listeners.borrow().iter().map(|fd| fd.expect("every listener is up")).collect();

    // Accepted connections, and every client socket once its connect ended.
    let accepted: Rc<RefCell<Vec<(Api, Fd)>>> = Rc::default();
    let clients: Rc<RefCell<Vec<(Api, Fd)>>> = Rc::default();
    let refused = Rc::new(Cell::new(0));
    let mut tasks: Vec<Task> = Vec::new();
    for (api, &fd) in servers.iter().zip(&listeners) {
        let (api, accepted, clients, refused) = (api.clone(), accepted.clone(), clients.clone(), refused.clone());
        tasks.push(Box::pin(async move {
            let done = || clients.borrow().len() == CONNS && accepted.borrow().len() + refused.get() == CONNS;
            while let Some(result) = unless(done, api.accept(fd)).await {
                let (conn, _) = result.expect("accept");
                accepted.borrow_mut().push((api.clone(), conn));
            }
        }));
    }
    for i in 0..CONNS {
        let api = world.api(1, i);
        let (clients, refused) = (clients.clone(), refused.clone());
        tasks.push(Box::pin(async move {
            let fd = api.socket(SockType::Stream).unwrap();
            match api.connect(fd, SocketAddr::new(IpAddr::V4(SERVER_IP), PORT)).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => refused.set(refused.get() + 1),
                Err(e) => panic!("connect: {e}"),
            }
            clients.borrow_mut().push((api, fd));
        }));
    }
    world.run(tasks, "burst");
    let finished_at = world.now();

    let accepted_count = accepted.borrow().len();
    let closing: Vec<Task> = accepted
        .borrow_mut()
        .drain(..)
        .chain(clients.borrow_mut().drain(..))
        .map(|(api, fd)| Box::pin(async move { api.close(fd).await.unwrap() }) as Task)
        .collect();
    world.run(closing, "close");
    for _ in 0..100_000 {
        while world.step() {}
        if world.groups.iter().all(|g| (0..g.len()).all(|i| g.poll_at(i).is_none_or(|t| t > world.now()))) {
            break;
        }
        world.advance();
    }
    for port in &world.ports {
        port.check_accounting().unwrap();
    }
    assert_eq!(world.pool.in_use(), 0, "mbufs still in use after every connection closed");
    Outcome {
        refused: refused.get(),
        accepted: accepted_count,
        server: world.stats(0),
        client: world.stats(1),
        finished_at,
    }
}

#[test]
fn a_burst_of_connects_beyond_the_backlog_all_complete() {
    let outcome = burst();
    assert_eq!(outcome.refused, 0, "connections refused: {outcome:?}");
    assert_eq!(outcome.accepted, CONNS);
    let overflows: u64 = outcome.server.iter().map(|s| s.backlog_drops).sum();
    assert!(overflows > 0, "the backlog of {BACKLOG} never overflowed: {:?}", outcome.server);
    let served: u64 = outcome.server.iter().map(|s| s.accepted).sum();
    assert_eq!(served, CONNS as u64);
    assert!(outcome.server.iter().all(|s| s.accepted > 0), "RSS left a stack without connections");
    assert_eq!(burst(), outcome, "a second run with the same seed differs");
}
