//! The socket API under the simulation executor: misuse fails with the
//! `io::ErrorKind` Linux would give (and never panics), and UDP, ICMP,
//! epoll and half-close work end to end between two hosts on a bridge.
//! Every test ends with the run finished cleanly, the ports' and bridge's
//! accounting closed and every buffer back in its pool after the settle
//! phase.

use std::fmt::Debug;
use std::future::Future;
use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ethdev::Instant;
use sim::apps::{ping, udp};
use sim::exec::{self, SimClock, Spawner};
use sim::latch::Latch;
use sim::world::World;
use stack::{Api, Epoll, Fd, ForwardMode, GroupConfig, Interest, Shutdown, SockOpt, SockType};
use user_vbridge::Impairments;

const SERVER: usize = 0;
const CLIENT: usize = 1;
const STACKS: usize = 2;

fn any(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
}

/// Two hosts with two stacks each, and the tasks to run over them.
struct Net {
    world: World,
    clock: Arc<SimClock>,
    spawner: Spawner,
}

impl Net {
    fn new() -> Net {
        Net::with_stacks(STACKS, STACKS)
    }

    /// The server host listens in `listen_shadow` mode, so that a listener
    /// made by any application thread sees SYNs whichever queue they land on;
    /// the client host is plain RSS.
    fn with_stacks(server_stacks: usize, client_stacks: usize) -> Net {
        let mut world = World::new(1).unwrap();
        let server = GroupConfig {
            mode: ForwardMode::ListenShadow,
            ..GroupConfig::new(server_stacks, [0x02, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 1))
        };
        let client = GroupConfig {
            seed: 2,
            ..GroupConfig::new(client_stacks, [0x02, 0, 0, 0, 0, 2], Ipv4Addr::new(10, 0, 0, 2))
        };
        world.add_host("server", server, Impairments::default()).unwrap();
        world.add_host("client", client, Impairments::default()).unwrap();
        Net { world, clock: Arc::new(SimClock::default()), spawner: Spawner::new() }
    }

    fn api(&self, host: usize, home: usize) -> Api {
        Api::new(&self.world.hosts[host].group, home, self.clock.clone())
    }

    fn addr(&self, host: usize, port: u16) -> SocketAddr {
        self.world.hosts[host].addr(port)
    }

    fn spawn(&self, name: &str, fut: impl Future<Output = io::Result<()>> + Send + 'static) {
        self.spawner.spawn(0, name, fut);
    }

    fn daemon(&self, name: &str, fut: impl Future<Output = io::Result<()>> + Send + 'static) {
        self.spawner.spawn_daemon(0, name, fut);
    }

    /// Runs every task to completion in virtual time, lets the world settle,
    /// and checks the run, the accounting and the buffers.
    fn run(mut self) -> World {
        let deadline = Instant::ZERO + Duration::from_secs(120);
        let outcome = exec::sim::run(&mut self.world, &self.clock, &self.spawner, deadline, Duration::from_secs(5));
        outcome.ok().unwrap_or_else(|e| panic!("run: {e}"));
        self.world.check_accounting().unwrap_or_else(|e| panic!("accounting: {e}"));
        assert_eq!(self.world.buffers_in_use(), 0, "buffers still in use after the settle phase");
        self.world
    }
}

fn fail(msg: String) -> io::Error {
    io::Error::other(msg)
}

/// `r` must be an error of kind `kind`.
fn expect_kind<T: Debug>(r: io::Result<T>, kind: ErrorKind, what: &str) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == kind => Ok(()),
        other => Err(fail(format!("{what}: expected {kind:?}, got {other:?}"))),
    }
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> io::Result<()> {
    if cond {
        Ok(())
    } else {
        Err(fail(msg()))
    }
}

async fn listener(api: &Api, port: u16) -> io::Result<Fd> {
    let fd = api.socket(SockType::Stream)?;
    api.bind(fd, any(port)).await?;
    api.listen(fd, 16).await?;
    Ok(fd)
}

// ---- misuse -------------------------------------------------------------

/// Runs `body` as one application task on the server's stack `home` of a
/// fresh [`Net`], with every check of [`Net::run`].
fn misuse<F>(home: usize, body: impl FnOnce(Api) -> F)
where
    F: Future<Output = io::Result<()>> + Send + 'static,
{
    let net = Net::new();
    net.spawn("misuse", body(net.api(SERVER, home)));
    net.run();
}

#[test]
fn send_on_a_listening_socket_is_an_error() {
    misuse(0, |api| async move {
        let fd = listener(&api, 80).await?;
        // Linux says EPIPE (tcp_sendmsg on a socket in LISTEN); the point is
        // that it is an error and neither blocks nor pretends to send.
        let r = api.send(fd, b"nope").await;
        match &r {
            Err(e) if e.kind() != ErrorKind::WouldBlock => {}
            _ => return Err(fail(format!("send on a listener: expected an error, got {r:?}"))),
        }
        expect_kind(api.recv(fd, 10).await, ErrorKind::NotConnected, "recv on a listener")?;
        expect_kind(api.shutdown(fd, Shutdown::Write).await, ErrorKind::NotConnected, "shutdown of a listener")?;
        api.close(fd).await
    });
}

#[test]
fn recv_send_and_getpeername_on_an_unconnected_socket_are_not_connected() {
    misuse(1, |api| async move {
        let fd = api.socket(SockType::Stream)?;
        expect_kind(api.recv(fd, 10).await, ErrorKind::NotConnected, "recv on a fresh socket")?;
        expect_kind(api.getpeername(fd), ErrorKind::NotConnected, "getpeername on a fresh socket")?;
        api.bind(fd, any(80)).await?;
        expect_kind(api.recv(fd, 10).await, ErrorKind::NotConnected, "recv on a bound socket")?;
        expect_kind(api.getpeername(fd), ErrorKind::NotConnected, "getpeername on a bound socket")?;
        let r = api.send(fd, b"x").await;
        ensure(r.as_ref().is_err_and(|e| e.kind() != ErrorKind::WouldBlock), || {
            format!("send on an unconnected socket: expected an error, got {r:?}")
        })?;
        ensure(api.getsockname(fd)? == any(80), || "getsockname after bind".into())?;
        api.close(fd).await
    });
}

#[test]
fn second_close_is_an_error() {
    misuse(0, |api| async move {
        // A fresh socket, a listener and a UDP socket: each closes once.
        let fresh = api.socket(SockType::Stream)?;
        let listening = listener(&api, 80).await?;
        let dgram = udp::bind(&api, any(53)).await?;
        for fd in [fresh, listening, dgram] {
            api.close(fd).await?;
            expect_kind(api.close(fd).await, ErrorKind::InvalidInput, "second close (EBADF)")?;
            expect_kind(api.recv(fd, 1).await, ErrorKind::InvalidInput, "recv on a closed fd (EBADF)")?;
        }
        // Closing released the ports.
        let again = listener(&api, 80).await?;
        let udp_again = udp::bind(&api, any(53)).await?;
        api.close(again).await?;
        api.close(udp_again).await
    });
}

#[test]
fn bind_twice_on_one_fd_is_an_error() {
    misuse(0, |api| async move {
        let fd = api.socket(SockType::Stream)?;
        api.bind(fd, any(80)).await?;
        expect_kind(api.bind(fd, any(81)).await, ErrorKind::InvalidInput, "second bind, other port")?;
        expect_kind(api.bind(fd, any(80)).await, ErrorKind::InvalidInput, "second bind, same port")?;
        ensure(api.getsockname(fd)? == any(80), || "the first bind stands".into())?;
        // The failed bind to 81 must not have claimed 81.
        let other = api.socket(SockType::Stream)?;
        api.bind(other, any(81)).await?;
        let dgram = udp::bind(&api, any(53)).await?;
        expect_kind(api.bind(dgram, any(54)).await, ErrorKind::InvalidInput, "second bind of a UDP socket")?;
        for fd in [fd, other, dgram] {
            api.close(fd).await?;
        }
        Ok(())
    });
}

#[test]
fn same_port_without_reuseaddr_is_addr_in_use() {
    let net = Net::new();
    let (a, b) = (net.api(SERVER, 0), net.api(SERVER, 1));
    net.spawn("misuse", async move {
        let first = listener(&a, 80).await?;
        let second = b.socket(SockType::Stream)?;
        expect_kind(b.bind(second, any(80)).await, ErrorKind::AddrInUse, "TCP bind of a listening port")?;
        // The failed bind leaves the socket unbound and usable.
        b.bind(second, any(8080)).await?;
        let u1 = udp::bind(&a, any(53)).await?;
        let u2 = b.socket(SockType::Dgram)?;
        expect_kind(b.bind(u2, any(53)).await, ErrorKind::AddrInUse, "UDP bind of a bound port")?;
        // With SO_REUSEADDR on both, the port is shared.
        let (r1, r2) = (a.socket(SockType::Stream)?, b.socket(SockType::Stream)?);
        for (api, fd) in [(&a, r1), (&b, r2)] {
            api.setsockopt(fd, SockOpt::ReuseAddr(true)).await?;
            api.bind(fd, any(9000)).await?;
        }
        // Only one of them asking for it is not enough.
        let r3 = a.socket(SockType::Stream)?;
        expect_kind(a.bind(r3, any(9000)).await, ErrorKind::AddrInUse, "SO_REUSEADDR on the others only")?;
        // Closing the first listener frees port 80.
        a.close(first).await?;
        let third = b.socket(SockType::Stream)?;
        b.bind(third, any(80)).await?;
        for (api, fd) in [(&b, second), (&a, u1), (&b, u2), (&a, r1), (&b, r2), (&a, r3), (&b, third)] {
            api.close(fd).await?;
        }
        Ok(())
    });
    net.run();
}

#[test]
fn connect_to_a_port_nobody_listens_on_is_refused() {
    let net = Net::new();
    let server = net.addr(SERVER, 9);
    for home in 0..STACKS {
        let api = net.api(CLIENT, home);
        net.spawn("connect", async move {
            let fd = api.socket(SockType::Stream)?;
            expect_kind(api.connect(fd, server).await, ErrorKind::ConnectionRefused, "connect to a closed port")?;
            api.close(fd).await?;
            // A second try is refused too (the first left no state behind).
            let fd = api.socket(SockType::Stream)?;
            expect_kind(api.connect(fd, server).await, ErrorKind::ConnectionRefused, "second connect")?;
            api.close(fd).await
        });
    }
    net.run();
}

#[test]
fn accept_on_a_non_listening_socket_is_an_error() {
    let net = Net::new();
    let api = net.api(SERVER, 0);
    let server = net.addr(SERVER, 80);
    let client = net.api(CLIENT, 0);
    let listening = Latch::new(1);
    let l2 = listening.clone();
    net.daemon("server", async move {
        let fd = api.socket(SockType::Stream)?;
        expect_kind(api.accept(fd).await, ErrorKind::InvalidInput, "accept on a fresh socket")?;
        api.bind(fd, any(80)).await?;
        expect_kind(api.accept(fd).await, ErrorKind::InvalidInput, "accept on a bound socket")?;
        let dgram = udp::bind(&api, any(53)).await?;
        expect_kind(api.accept(dgram).await, ErrorKind::InvalidInput, "accept on a UDP socket")?;
        api.listen(fd, 4).await?;
        l2.count_down();
        let (conn, _) = api.accept(fd).await?;
        expect_kind(api.accept(conn).await, ErrorKind::InvalidInput, "accept on a connection")?;
        expect_kind(api.listen(conn, 4).await, ErrorKind::InvalidInput, "listen on a connection")?;
        ensure(api.recv(conn, 10).await?.is_empty(), || "end of stream after the client closed".into())?;
        api.close(conn).await
    });
    net.spawn("client", async move {
        listening.wait().await;
        let fd = client.socket(SockType::Stream)?;
        client.connect(fd, server).await?;
        client.close(fd).await
    });
    net.run();
}

#[test]
fn nonblocking_recv_without_data_would_block() {
    let net = Net::new();
    let (server_api, client) = (net.api(SERVER, 0), net.api(CLIENT, 1));
    let server = net.addr(SERVER, 80);
    let listening = Latch::new(1);
    let l2 = listening.clone();
    net.daemon("server", async move {
        let fd = listener(&server_api, 80).await?;
        l2.count_down();
        let (conn, _) = server_api.accept(fd).await?;
        let got = sim::apps::read_exact(&server_api, conn, 4).await?;
        ensure(got == b"ping", || format!("server got {got:?}"))?;
        server_api.send_all(conn, b"pong").await?;
        ensure(server_api.recv(conn, 10).await?.is_empty(), || "end of stream".into())?;
        server_api.close(conn).await
    });
    net.spawn("client", async move {
        listening.wait().await;
        let fd = client.socket(SockType::Stream)?;
        client.connect(fd, server).await?;
        client.setsockopt(fd, SockOpt::NonBlocking(true)).await?;
        expect_kind(client.recv(fd, 10).await, ErrorKind::WouldBlock, "non-blocking recv with no data")?;
        expect_kind(client.recv(fd, 10).await, ErrorKind::WouldBlock, "again")?;
        ensure(client.send(fd, b"ping").await? == 4, || "non-blocking send with room".into())?;
        client.setsockopt(fd, SockOpt::NonBlocking(false)).await?;
        let got = sim::apps::read_exact(&client, fd, 4).await?;
        ensure(got == b"pong", || format!("client got {got:?}"))?;
        // Data drained: non-blocking recv would block again.
        client.setsockopt(fd, SockOpt::NonBlocking(true)).await?;
        expect_kind(client.recv(fd, 10).await, ErrorKind::WouldBlock, "non-blocking recv after draining")?;
        client.close(fd).await
    });
    net.run();
}

#[test]
fn nonblocking_accept_and_recvfrom_would_block() {
    misuse(0, |api| async move {
        let fd = listener(&api, 80).await?;
        api.setsockopt(fd, SockOpt::NonBlocking(true)).await?;
        expect_kind(api.accept(fd).await, ErrorKind::WouldBlock, "non-blocking accept with no connection")?;
        let dgram = udp::bind(&api, any(53)).await?;
        api.setsockopt(dgram, SockOpt::NonBlocking(true)).await?;
        expect_kind(api.recvfrom(dgram, 100).await, ErrorKind::WouldBlock, "non-blocking recvfrom")?;
        api.close(fd).await?;
        api.close(dgram).await
    });
}

#[test]
fn getpeername_on_unconnected_sockets_is_not_connected() {
    misuse(0, |api| async move {
        let fresh = api.socket(SockType::Stream)?;
        let listening = listener(&api, 80).await?;
        let dgram = udp::bind(&api, any(53)).await?;
        for fd in [fresh, listening, dgram] {
            expect_kind(api.getpeername(fd), ErrorKind::NotConnected, "getpeername")?;
            api.close(fd).await?;
        }
        Ok(())
    });
}

// ---- end to end ---------------------------------------------------------

#[test]
fn udp_request_response_100_round_trips() {
    let net = Net::new();
    let server = net.addr(SERVER, 7);
    let local = net.addr(CLIENT, 4000);
    let (server_api, client) = (net.api(SERVER, 1), net.api(CLIENT, 0));
    let listening = Latch::new(1);
    let l2 = listening.clone();
    net.daemon("udp server", async move {
        let fd = udp::bind(&server_api, any(7)).await?;
        l2.count_down();
        udp::server(server_api, fd).await
    });
    let trips = Arc::new(Mutex::new(0));
    let t2 = trips.clone();
    net.spawn("udp client", async move {
        listening.wait().await;
        *t2.lock().unwrap() = udp::client(client, local, server, 100).await?;
        Ok(())
    });
    let world = net.run();
    assert_eq!(*trips.lock().unwrap(), 100);
    let rpcs: u64 = (0..STACKS).map(|i| world.hosts[SERVER].group.stats(i).rpcs).sum();
    assert!(rpcs >= 200, "the server answered every request through the API ({rpcs} calls)");
}

/// Pings from every stack of a two-stack client to a one-stack server: the
/// replies come back on whichever client queue ICMP hashes to and must be
/// handed to the stack owning the echo identifier.
#[test]
fn ping_10_echoes() {
    let net = Net::with_stacks(1, STACKS);
    let target = IpAddr::V4(net.world.hosts[SERVER].ipv4());
    let replies = Arc::new(Mutex::new(0));
    for home in 0..STACKS {
        let (api, r) = (net.api(CLIENT, home), replies.clone());
        net.spawn("ping", async move {
            let n = ping::ping(api, target, 0x4200 + home as u16, 10).await?;
            *r.lock().unwrap() += n;
            Ok(())
        });
    }
    net.run();
    assert_eq!(*replies.lock().unwrap(), 10 * STACKS as u16);
}

/// With several stacks on the pinged host, an echo request may land on a
/// stack that did not take the pinger's ARP request; smoltcp answers echoes
/// without waiting for neighbour resolution, so that stack must already
/// know the pinger: the group hands every stack a copy of ARP requests as
/// replies.
#[test]
fn ping_10_echoes_to_a_multi_stack_host() {
    let net = Net::new();
    let target = IpAddr::V4(net.world.hosts[SERVER].ipv4());
    let api = net.api(CLIENT, 0);
    net.spawn("ping", async move { ping::ping(api, target, 0x4200, 10).await.map(|_| ()) });
    net.run();
}

#[test]
fn epoll_waits_on_a_listener_and_a_connection() {
    let net = Net::new();
    let (server_api, client) = (net.api(SERVER, 0), net.api(CLIENT, 1));
    let server = net.addr(SERVER, 80);
    let listening = Latch::new(1);
    let watching = Latch::new(1);
    let (l2, w2) = (listening.clone(), watching.clone());
    const MESSAGE: &[u8] = b"hello, epoll";
    net.spawn("server", async move {
        let api = server_api;
        let lfd = listener(&api, 80).await?;
        let mut ep = Epoll::new();
        ep.add(lfd, Interest::READ);
        l2.count_down();
        let ready = api.epoll_wait(&ep, 8).await?;
        ensure(ready.len() == 1 && ready[0].0 == lfd && ready[0].1.readable, || {
            format!("epoll on the listener: {ready:?}")
        })?;
        api.setsockopt(lfd, SockOpt::NonBlocking(true)).await?;
        let (conn, _) = api.accept(lfd).await?;
        api.setsockopt(conn, SockOpt::NonBlocking(true)).await?;
        ep.add(conn, Interest::READ);
        // Nothing to read yet: epoll_wait must wait for the client's data.
        expect_kind(api.recv(conn, 100).await, ErrorKind::WouldBlock, "no data before the client sends")?;
        w2.count_down();
        let mut got = Vec::new();
        let mut eof = false;
        let mut waits = 0;
        while !eof {
            waits += 1;
            ensure(waits < 100, || "epoll_wait returned too often".into())?;
            let ready = api.epoll_wait(&ep, 8).await?;
            ensure(!ready.is_empty(), || "epoll_wait returned nothing".into())?;
            for (fd, r) in ready {
                ensure(fd == conn && r.readable, || format!("unexpected readiness {fd:?} {r:?} (listener {lfd:?})"))?;
                // Readable: a recv must not would-block.
                let data = api.recv(conn, 100).await?;
                if data.is_empty() {
                    ensure(r.hangup, || "end of stream without hang-up".into())?;
                    eof = true;
                }
                got.extend_from_slice(&data);
            }
        }
        ensure(got == MESSAGE, || format!("server got {got:?}"))?;
        api.close(conn).await?;
        api.close(lfd).await
    });
    net.spawn("client", async move {
        listening.wait().await;
        let fd = client.socket(SockType::Stream)?;
        client.connect(fd, server).await?;
        watching.wait().await;
        client.send_all(fd, MESSAGE).await?;
        client.shutdown(fd, Shutdown::Write).await?;
        ensure(client.recv(fd, 10).await?.is_empty(), || "server closed without sending".into())?;
        client.close(fd).await
    });
    net.run();
}

#[test]
fn shutdown_write_is_end_of_stream_for_the_peer() {
    let net = Net::new();
    let (server_api, client) = (net.api(SERVER, 1), net.api(CLIENT, 0));
    let server = net.addr(SERVER, 80);
    let listening = Latch::new(1);
    let l2 = listening.clone();
    const LEN: usize = 100_000;
    let payload: Vec<u8> = (0..LEN).map(|i| (i * 7 % 251) as u8).collect();
    let expected = payload.clone();
    net.daemon("server", async move {
        let api = server_api;
        let lfd = listener(&api, 80).await?;
        l2.count_down();
        let (conn, _) = api.accept(lfd).await?;
        let mut got = Vec::new();
        loop {
            let data = api.recv(conn, 16 * 1024).await?;
            if data.is_empty() {
                break;
            }
            got.extend_from_slice(&data);
        }
        ensure(got == expected, || format!("server got {} bytes, not the {LEN} sent", got.len()))?;
        // End of stream is sticky, and the other direction still works.
        ensure(api.recv(conn, 10).await?.is_empty(), || "second recv after end of stream".into())?;
        api.send_all(conn, &(got.len() as u64).to_le_bytes()).await?;
        api.close(conn).await
    });
    net.spawn("client", async move {
        listening.wait().await;
        let fd = client.socket(SockType::Stream)?;
        client.connect(fd, server).await?;
        client.send_all(fd, &payload).await?;
        client.shutdown(fd, Shutdown::Write).await?;
        expect_kind(client.send(fd, b"late").await, ErrorKind::BrokenPipe, "send after shutdown(Write)")?;
        let receipt = sim::apps::read_exact(&client, fd, 8).await?;
        let n = u64::from_le_bytes(receipt.try_into().unwrap());
        ensure(n == LEN as u64, || format!("server counted {n} bytes"))?;
        ensure(client.recv(fd, 10).await?.is_empty(), || "end of stream after the server closed".into())?;
        client.close(fd).await
    });
    net.run();
}
