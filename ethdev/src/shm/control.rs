//! A domain's control channel: who is attached, under which owner id, and
//! when they leave or die.
//!
//! The primary listens on `control.sock` in the domain's directory. A
//! secondary connects and says `HELLO <name>`; the primary reads the peer's
//! credentials from the kernel (`SO_PEERCRED`: they cannot be forged, unlike
//! anything the peer could send), refuses another user unless it is root,
//! assigns an owner id and answers `WELCOME <owner>`. The secondary tags the
//! buffers it allocates with that id. A clean exit says `BYE` first.
//!
//! The connection is the liveness signal, as gazelle's registration socket
//! is for ltran: the kernel closes a killed process's socket at once, so a
//! `kill -9` shows as end-of-file on the next [`ControlServer::poll`]. A
//! pidfd then tells a death from a process that merely dropped its socket;
//! the latter is reported [`ControlEvent::Died`] only once the pidfd says it
//! exited, so nothing it may still touch is reclaimed under it.
//!
//! After its greeting a secondary may ask for flow rules on the domain's
//! shared ports ([`super::rules`]): the primary's [`RuleService`] answers
//! `FLOW <id>`, `OK` or `DENIED <reason>`, and the connection stays.
//!
//! Nothing here spawns a thread or sleeps: the primary calls `poll` from its
//! own loop (the executor decides how often), which keeps the channel usable
//! in a deterministic test.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{pidfd_open, Pid, PidfdFlags};

use super::procs::{ProcEntry, ProcState, ProcTable};
use super::rules::{Request, TupleRule};
use super::{Domain, ShmError};
use crate::flow::FlowId;
use crate::owner::{DeadOwner, Owner};

/// Name of the control socket in a domain's directory.
pub const SOCKET: &str = "control.sock";
/// The first owner id the primary hands out; lower ids are left to the
/// owners a process names for its own threads and stacks.
pub const FIRST_OWNER: u32 = crate::owner::FIRST_DOMAIN_OWNER;
/// How long a client waits for the primary's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// A registered process, as the primary knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its pid, from the kernel.
    pub pid: u32,
    /// Its uid, from the kernel.
    pub uid: u32,
    /// The name it registered under.
    pub name: String,
    /// The owner id it was given.
    pub owner: Owner,
}

/// What a [`ControlServer::poll`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlEvent {
    /// A process registered.
    Registered(Peer),
    /// A process said goodbye and closed its connection.
    LoggedOut(Peer),
    /// A process exited without saying goodbye (killed or crashed): reclaim
    /// what its owner id holds.
    Died(Peer, DeadOwner),
    /// A connection was refused (wrong user, malformed greeting).
    Refused {
        /// The peer's pid, from the kernel.
        pid: u32,
        /// Why.
        reason: String,
    },
}

/// The primary's end of the control channel.
#[derive(Debug)]
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    uid: u32,
    next_owner: u32,
    conns: Vec<Conn>,
    /// Peers whose socket closed without `BYE` while they still ran.
    dying: Vec<(Peer, OwnedFd)>,
    /// The domain's process table, kept up to date for `dtnet stats`.
    table: ProcTable,
}

#[derive(Debug)]
struct Conn {
    stream: BufReader<UnixStream>,
    pid: u32,
    uid: u32,
    peer: Option<Peer>,
    line: String,
}

impl ControlServer {
    /// Listens on the control socket of `domain`, whose primary this process is.
    pub fn bind(domain: &Domain) -> Result<ControlServer, ShmError> {
        let path = domain.dir().join(SOCKET);
        if !domain.is_primary() {
            return Err(ShmError::Corrupt("only the primary listens on the control socket".into()));
        }
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(|e| ShmError::io(&path, e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| ShmError::io(&path, e))?;
        listener.set_nonblocking(true).map_err(|e| ShmError::io(&path, e))?;
        let uid = rustix::process::geteuid().as_raw();
        let table = ProcTable::create(domain)?;
        let me = ProcEntry {
            pid: std::process::id(),
            primary: true,
            owner: Owner::NONE,
            name: "primary".into(),
            state: ProcState::Alive,
        };
        table.record(&me);
        Ok(ControlServer { listener, path, uid, next_owner: FIRST_OWNER, conns: Vec::new(), dying: Vec::new(), table })
    }

    /// The socket's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The processes registered now.
    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.conns.iter().filter_map(|c| c.peer.as_ref())
    }

    /// Accepts, reads and notices hang-ups without blocking; returns what
    /// happened. Requests for flow rules are denied (see [`Self::poll_serving`]).
    pub fn poll(&mut self) -> Vec<ControlEvent> {
        self.poll_serving(&mut NoRules)
    }

    /// [`Self::poll`], with `service` deciding the peers' requests.
    pub fn poll_serving(&mut self, service: &mut dyn RuleService) -> Vec<ControlEvent> {
        let mut events = Vec::new();
        self.accept(&mut events);
        let conns = std::mem::take(&mut self.conns);
        for conn in conns {
            if let Some(conn) = self.serve(conn, service, &mut events) {
                self.conns.push(conn);
            }
        }
        self.reap(&mut events);
        events.iter().for_each(|e| self.note(e));
        events
    }

    /// Writes what `event` says about a peer into the process table.
    fn note(&self, event: &ControlEvent) {
        let (peer, state) = match event {
            ControlEvent::Registered(p) => (p, ProcState::Alive),
            ControlEvent::LoggedOut(p) => (p, ProcState::LoggedOut),
            ControlEvent::Died(p, _) => (p, ProcState::Died),
            ControlEvent::Refused { .. } => return,
        };
        let entry = ProcEntry { pid: peer.pid, primary: false, owner: peer.owner, name: peer.name.clone(), state };
        self.table.record(&entry);
    }

    fn accept(&mut self, events: &mut Vec<ControlEvent>) {
        while let Ok((stream, _)) = self.listener.accept() {
            let Ok(cred) = rustix::net::sockopt::socket_peercred(&stream) else { continue };
            let (pid, uid) = (cred.pid.as_raw_nonzero().get() as u32, cred.uid.as_raw());
            if uid != self.uid && uid != 0 {
                let reason = format!("uid {uid} may not join a domain of uid {}", self.uid);
                let _ = (&stream).write_all(format!("REFUSED {reason}\n").as_bytes());
                events.push(ControlEvent::Refused { pid, reason });
                continue;
            }
            if stream.set_nonblocking(true).is_ok() {
                self.conns.push(Conn { stream: BufReader::new(stream), pid, uid, peer: None, line: String::new() });
            }
        }
    }

    /// Reads what `conn` sent; `None` once it is gone.
    fn serve(&mut self, mut conn: Conn, service: &mut dyn RuleService, events: &mut Vec<ControlEvent>) -> Option<Conn> {
        loop {
            match conn.stream.read_line(&mut conn.line) {
                Ok(0) => return self.hung_up(conn, events),
                Ok(_) if conn.line.ends_with('\n') => {
                    let line = std::mem::take(&mut conn.line);
                    if !self.handle(&mut conn, line.trim_end(), service, events) {
                        return self.hung_up(conn, events);
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Some(conn),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return self.hung_up(conn, events),
            }
            if conn.line.len() > 256 {
                events.push(ControlEvent::Refused { pid: conn.pid, reason: "line over 256 bytes".into() });
                return self.hung_up(conn, events);
            }
        }
    }

    /// Acts on one line; `false` if the connection ends (after `BYE`, with
    /// the peer logged out; after a bad line, with the peer still on it).
    fn handle(
        &mut self,
        conn: &mut Conn,
        line: &str,
        service: &mut dyn RuleService,
        events: &mut Vec<ControlEvent>,
    ) -> bool {
        match (line.split_once(' '), &conn.peer) {
            (Some(("HELLO", name)), None) if valid_name(name) => {
                let peer = Peer { pid: conn.pid, uid: conn.uid, name: name.into(), owner: Owner(self.next_owner) };
                self.next_owner += 1;
                let _ = conn.stream.get_mut().write_all(format!("WELCOME {}\n", peer.owner.0).as_bytes());
                events.push(ControlEvent::Registered(peer.clone()));
                conn.peer = Some(peer);
                true
            }
            (Some(("FLOW", _)), Some(peer)) => {
                let answer = answer(service, peer, line).unwrap_or_else(|why| format!("DENIED {why}"));
                let _ = conn.stream.get_mut().write_all(format!("{answer}\n").as_bytes());
                true
            }
            _ if line == "BYE" => {
                events.extend(conn.peer.take().map(ControlEvent::LoggedOut));
                false
            }
            _ => {
                let reason = format!("unexpected message {:?}", line.chars().take(64).collect::<String>());
                let _ = conn.stream.get_mut().write_all(format!("REFUSED {reason}\n").as_bytes());
                events.push(ControlEvent::Refused { pid: conn.pid, reason });
                false
            }
        }
    }

    /// The connection closed without `BYE`: a death, or a peer that is
    /// still running and must be watched until it exits.
    fn hung_up(&mut self, conn: Conn, events: &mut Vec<ControlEvent>) -> Option<Conn> {
        let peer = conn.peer?;
        match Pid::from_raw(peer.pid as i32).map(|pid| pidfd_open(pid, PidfdFlags::empty())) {
            Some(Ok(fd)) if !exited(&fd) => self.dying.push((peer, fd)),
            _ => events.extend(died(peer)),
        }
        None
    }

    fn reap(&mut self, events: &mut Vec<ControlEvent>) {
        let (dead, alive): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.dying).into_iter().partition(|(_, fd)| exited(fd));
        self.dying = alive;
        events.extend(dead.into_iter().filter_map(|(peer, _)| died(peer)));
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The answer to request `line` of `peer`, or why it is denied.
fn answer(service: &mut dyn RuleService, peer: &Peer, line: &str) -> Result<String, String> {
    match Request::parse(line)? {
        Request::FlowAdd(rule) => service.flow_add(peer, &rule).map(|id| format!("FLOW {}", id.raw())),
        Request::FlowDel { port, id } => service.flow_del(peer, &port, id).map(|()| "OK".into()),
    }
    .map_err(|why| why.replace(['\n', '\r'], " "))
}

/// The death of `peer`, unless it claims to be this very process (which is
/// alive, so nothing it holds may be reclaimed).
fn died(peer: Peer) -> Option<ControlEvent> {
    (peer.pid != std::process::id()).then(|| {
        let dead = DeadOwner::new(peer.owner);
        ControlEvent::Died(peer, dead)
    })
}

/// Whether the process behind `pidfd` has exited (its pidfd is readable).
fn exited(pidfd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    poll(&mut fds, Some(&rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 })).map(|n| n > 0).unwrap_or(true)
}

/// Registration names: 1 to 32 letters, digits, `-`, `_` or `.`.
fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Connects to the control socket at `path`, waiting up to `ANSWER_TIMEOUT`
/// for a primary that made its domain but is not listening yet.
fn connect(path: &std::path::Path) -> Result<UnixStream, ShmError> {
    let start = std::time::Instant::now();
    loop {
        match UnixStream::connect(path) {
            Ok(stream) => return Ok(stream),
            Err(e)
                if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused)
                    && start.elapsed() < ANSWER_TIMEOUT =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(ShmError::io(path, e)),
        }
    }
}

/// A secondary's end of the control channel.
#[derive(Debug)]
pub struct ControlClient {
    stream: UnixStream,
    owner: Owner,
    path: PathBuf,
    /// Held for a request and its answer, so threads' requests do not interleave.
    talk: Mutex<()>,
}

impl ControlClient {
    /// Registers this process with `domain`'s primary under `name`.
    pub fn register(domain: &Domain, name: &str) -> Result<ControlClient, ShmError> {
        let path = domain.dir().join(SOCKET);
        let stream = connect(&path)?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(|e| ShmError::io(&path, e))?;
        // A primary that refuses at once may close before the greeting
        // lands: its answer is still there to read, so read it first.
        let sent = (&stream).write_all(format!("HELLO {name}\n").as_bytes());
        let mut answer = String::new();
        let read = BufReader::new(&stream).read_line(&mut answer);
        if answer.is_empty() {
            let error = sent.err().or(read.err()).unwrap_or_else(|| ErrorKind::UnexpectedEof.into());
            return Err(ShmError::io(&path, error));
        }
        let refused = || ShmError::Refused(answer.trim_end().trim_start_matches("REFUSED ").to_string());
        let owner = answer.strip_prefix("WELCOME ").and_then(|o| o.trim_end().parse().ok()).ok_or_else(refused)?;
        crate::owner::set_self_owner(Owner(owner));
        Ok(ControlClient { stream, owner: Owner(owner), path, talk: Mutex::new(()) })
    }

    /// The owner id the primary gave this process.
    pub fn owner(&self) -> Owner {
        self.owner
    }

    /// Asks the primary for flow rule `rule`; returns its id.
    pub fn flow_add(&self, rule: &TupleRule) -> Result<FlowId, ShmError> {
        let answer = self.ask(&Request::FlowAdd(rule.clone()))?;
        let id = answer.strip_prefix("FLOW ").and_then(|id| id.parse().ok());
        id.map(FlowId::from_raw).ok_or_else(|| ShmError::Corrupt(format!("unexpected answer {answer:?}")))
    }

    /// Asks the primary to destroy rule `id` of port `port`, which this
    /// process asked for.
    pub fn flow_del(&self, port: &str, id: FlowId) -> Result<(), ShmError> {
        match self.ask(&Request::FlowDel { port: port.into(), id })?.as_str() {
            "OK" => Ok(()),
            other => Err(ShmError::Corrupt(format!("unexpected answer {other:?}"))),
        }
    }

    /// Sends `request` and reads the answer; a denial is an error.
    fn ask(&self, request: &Request) -> Result<String, ShmError> {
        let _talk = self.talk.lock().unwrap_or_else(PoisonError::into_inner);
        (&self.stream)
            .write_all(format!("{}\n", request.to_line()).as_bytes())
            .map_err(|e| ShmError::io(&self.path, e))?;
        let mut answer = String::new();
        BufReader::new(&self.stream).read_line(&mut answer).map_err(|e| ShmError::io(&self.path, e))?;
        if answer.is_empty() {
            return Err(ShmError::io(&self.path, ErrorKind::UnexpectedEof));
        }
        let answer = answer.trim_end();
        match answer.strip_prefix("DENIED ") {
            Some(why) => Err(ShmError::Denied(why.into())),
            None => Ok(answer.into()),
        }
    }

    /// Whether the primary has gone (its end of the connection closed).
    pub fn primary_gone(&self) -> bool {
        let _talk = self.talk.lock().unwrap_or_else(PoisonError::into_inner);
        let mut fds = [PollFd::new(&self.stream, PollFlags::IN)];
        let zero = rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 };
        if poll(&mut fds, Some(&zero)).unwrap_or(0) == 0 {
            return false;
        }
        let mut byte = [0u8; 1];
        let _ = self.stream.set_nonblocking(true);
        let gone = matches!((&self.stream).read(&mut byte), Ok(0) | Err(_));
        let _ = self.stream.set_nonblocking(false);
        gone || fds[0].revents().contains(PollFlags::HUP)
    }

    /// Says goodbye: the primary logs this process out without reclaiming.
    pub fn logout(self) {
        let _ = (&self.stream).write_all(b"BYE\n");
    }
}

/// The primary's side of [`Request`]s: decides each one for the peer that
/// asked. An error is the reason the peer is told.
pub trait RuleService {
    /// Creates `rule` for `asker`.
    fn flow_add(&mut self, asker: &Peer, rule: &TupleRule) -> Result<FlowId, String>;
    /// Destroys rule `id` of port `port`, which `asker` must have asked for.
    fn flow_del(&mut self, asker: &Peer, port: &str, id: FlowId) -> Result<(), String>;
}

/// The service of a primary that configures nothing for others: it denies
/// every request.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRules;

impl RuleService for NoRules {
    fn flow_add(&mut self, _: &Peer, _: &TupleRule) -> Result<FlowId, String> {
        Err("this primary creates no flow rules for other processes".into())
    }

    fn flow_del(&mut self, _: &Peer, _: &str, _: FlowId) -> Result<(), String> {
        Err("this primary creates no flow rules for other processes".into())
    }
}
