//! The traffic applications of a kernel host: the same exchanges as
//! [`crate::apps`] (bulk with a receipt, echo, UDP request/response), byte
//! for byte on the wire, written with blocking `std::net` sockets on the
//! kernel's stack. They run on threads inside the host's namespace (see
//! [`super::KernelTasks`]) and check what they receive the same way: the
//! bulk server verifies every byte of the pattern, the echo client every
//! echoed chunk, the UDP client every answer. Servers serve until the run
//! tells them to stop; every blocking call wakes up now and then to look.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::apps::Workload;
use crate::apps::{bulk, echo, pattern, udp, ConnRecord, Ledger, Side};

/// How long a blocking call waits before it checks whether to stop.
const TICK: Duration = Duration::from_millis(20);
/// The stack index kernel records carry: the kernel is one stack.
const KERNEL_STACK: usize = 0;

/// Set when the run is over: kernel servers and stuck calls give up.
#[derive(Clone, Debug, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// Tells every application holding a clone to stop.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether to stop.
    pub fn stopped(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// An error for a call abandoned because the run stopped.
    fn error(&self) -> io::Error {
        io::Error::new(ErrorKind::Interrupted, "the run stopped before this finished")
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, msg)
}

fn timed_out(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// A connected stream whose reads wait at most a [`TICK`] at a time, so
/// they notice `stop`, and its addresses (read while connected: a closed
/// socket no longer has a peer).
struct Conn {
    stream: TcpStream,
    stop: StopFlag,
    local: SocketAddr,
    peer: SocketAddr,
}

impl Conn {
    fn new(stream: TcpStream, stop: &StopFlag) -> io::Result<Conn> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(TICK))?;
        stream.set_nodelay(true)?;
        let (local, peer) = (stream.local_addr()?, stream.peer_addr()?);
        Ok(Conn { stream, stop: stop.clone(), local, peer })
    }

    /// Reads some bytes (0 at end of stream).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.stream.read(buf) {
                Err(e) if timed_out(&e) || e.kind() == ErrorKind::Interrupted => {
                    if self.stop.stopped() {
                        return Err(self.stop.error());
                    }
                }
                other => return other,
            }
        }
    }

    /// Reads exactly `buf.len()` bytes (an error at end of stream).
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let mut got = 0;
        while got < buf.len() {
            match self.read(&mut buf[got..])? {
                0 => return Err(io::Error::new(ErrorKind::UnexpectedEof, "end of stream")),
                n => got += n,
            }
        }
        Ok(())
    }

    fn record(&self, side: Side, bytes: u64) -> ConnRecord {
        ConnRecord { side, stack: KERNEL_STACK, local: self.local, peer: self.peer, bytes }
    }
}

/// Binds and listens on `addr`.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves `workload` clients on `listener` until `stop`, a thread per
/// connection; each connection goes into `ledger` once its bytes are
/// verified (a bulk connection before its receipt leaves, so the record is
/// there by the time the client finishes).
pub fn tcp_server(listener: TcpListener, workload: Workload, ledger: Arc<Ledger>, stop: StopFlag) -> io::Result<()> {
    while !stop.stopped() {
        match listener.accept() {
            Ok((stream, _)) => {
                let (ledger, stop) = (Arc::clone(&ledger), stop.clone());
                thread::Builder::new().name("kernel handler".into()).spawn(move || {
                    let served = Conn::new(stream, &stop).and_then(|conn| match workload {
                        Workload::Bulk => bulk_handle(conn, &ledger),
                        Workload::Echo => echo_handle(conn, &ledger),
                    });
                    if let Err(e) = served {
                        tracing::warn!(error = %e, "kernel {workload:?} server connection failed");
                    }
                })?;
            }
            Err(e) if timed_out(&e) => thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn bulk_handle(mut conn: Conn, ledger: &Ledger) -> io::Result<()> {
    let mut header = [0; bulk::HEADER];
    conn.read_exact(&mut header)?;
    let (id, len) = (le_u64(&header[..8]), le_u64(&header[8..]));
    let (mut buf, mut got) = (vec![0; bulk::CHUNK], 0u64);
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        pattern::verify(id, got, &buf[..n]).map_err(|at| invalid(format!("stream {id}: wrong byte at offset {at}")))?;
        got += n as u64;
    }
    if got != len {
        return Err(invalid(format!("stream {id}: {got} of {len} bytes before end of stream")));
    }
    ledger.record(conn.record(Side::Server, got));
    conn.stream.write_all(&got.to_le_bytes())
}

fn echo_handle(mut conn: Conn, ledger: &Ledger) -> io::Result<()> {
    let (mut buf, mut total) = (vec![0; echo::CHUNK], 0u64);
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        conn.stream.write_all(&buf[..n])?;
        total += n as u64;
    }
    ledger.record(conn.record(Side::Server, total));
    Ok(())
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

/// One client connection of `workload` to `server`: stream `id`, `len`
/// bytes, every byte checked as [`bulk::client`] and [`echo::client`] do.
pub fn tcp_client(
    workload: Workload,
    server: SocketAddr,
    id: u64,
    len: u64,
    stop: &StopFlag,
) -> io::Result<ConnRecord> {
    let mut conn = Conn::new(TcpStream::connect(server)?, stop)?;
    match workload {
        Workload::Bulk => bulk_transfer(&mut conn, id, len)?,
        Workload::Echo => echo_transfer(&mut conn, id, len)?,
    }
    Ok(conn.record(Side::Client, len))
}

fn bulk_transfer(conn: &mut Conn, id: u64, len: u64) -> io::Result<()> {
    let mut header = [0; bulk::HEADER];
    header[..8].copy_from_slice(&id.to_le_bytes());
    header[8..].copy_from_slice(&len.to_le_bytes());
    conn.stream.write_all(&header)?;
    let (mut buf, mut sent) = (vec![0; bulk::CHUNK], 0u64);
    while sent < len {
        let n = bulk::CHUNK.min((len - sent) as usize);
        pattern::fill(id, sent, &mut buf[..n]);
        conn.stream.write_all(&buf[..n])?;
        sent += n as u64;
    }
    conn.stream.shutdown(Shutdown::Write)?;
    let mut receipt = [0; 8];
    conn.read_exact(&mut receipt)?;
    match u64::from_le_bytes(receipt) {
        verified if verified == len => Ok(()),
        verified => Err(invalid(format!("stream {id}: server verified {verified} of {len} bytes"))),
    }
}

fn echo_transfer(conn: &mut Conn, id: u64, len: u64) -> io::Result<()> {
    let (mut buf, mut back, mut done) = (vec![0; echo::CHUNK], vec![0; echo::CHUNK], 0u64);
    while done < len {
        let n = echo::CHUNK.min((len - done) as usize);
        pattern::fill(id, done, &mut buf[..n]);
        conn.stream.write_all(&buf[..n])?;
        conn.read_exact(&mut back[..n])?;
        pattern::verify(id, done, &back[..n]).map_err(|at| invalid(format!("echo {id}: wrong byte at {at}")))?;
        done += n as u64;
    }
    conn.stream.shutdown(Shutdown::Write)?;
    match conn.read(&mut back[..1])? {
        0 => Ok(()),
        _ => Err(invalid(format!("echo {id}: bytes after the last chunk"))),
    }
}

/// Binds a UDP socket on `addr` whose receives wait at most a [`TICK`].
pub fn udp_bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind(addr)?;
    socket.set_read_timeout(Some(TICK))?;
    Ok(socket)
}

/// Answers every datagram on `socket` with itself until `stop`.
pub fn udp_server(socket: UdpSocket, stop: StopFlag) -> io::Result<()> {
    let mut buf = [0; 2048];
    while !stop.stopped() {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => _ = socket.send_to(&buf[..n], from)?,
            Err(e) if timed_out(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `count` numbered requests from `socket` to `server`, each answer
/// checked as [`udp::client`] does; returns the round trips completed.
pub fn udp_client(socket: UdpSocket, server: SocketAddr, count: u32, stop: &StopFlag) -> io::Result<u32> {
    let mut buf = [0; 2048];
    for seq in 0..count {
        let request = udp::request(seq);
        socket.send_to(&request, server)?;
        let (n, from) = loop {
            match socket.recv_from(&mut buf) {
                Err(e) if timed_out(&e) && !stop.stopped() => continue,
                Err(e) if timed_out(&e) => return Err(stop.error()),
                other => break other?,
            }
        };
        if from != server || buf[..n] != request[..] {
            return Err(invalid(format!("request {seq}: bad response from {from}")));
        }
    }
    Ok(count)
}
