//! The Environment Abstraction Layer: DPDK's process-wide runtime.
//!
//! [`Eal::init`] runs `rte_eal_init` with an argument list (`--no-huge`,
//! `--no-pci`, `--vdev`, `-a`, `--file-prefix`, `--proc-type`, ...). DPDK
//! allows it once per process, so a second call is
//! [`Error::EalAlreadyInitialised`], also after the first one failed or was
//! dropped; `cargo nextest` runs every test in its own process, so each test
//! may have one. Pools and ports borrow the [`Eal`], so they are gone before
//! dropping it runs `rte_eal_cleanup`; a primary process then removes its
//! runtime directory (`/var/run/dpdk/<file-prefix>`, or the per-user one), so
//! tests with unique prefixes leave nothing behind. The `Eal` also records
//! which ports a [`crate::Port`] (or an `EthDev` adapter) holds, so one port
//! never has two owners. The `EthDev` adapter ([`crate::ethdev`]) cannot
//! borrow the `Eal` (its handles are `'static` and `Send`), so it holds an
//! [`EalUse`] instead: while any is alive, dropping the `Eal` skips
//! `rte_eal_cleanup` (the EAL then lives until the process exits) rather
//! than pull DPDK from under a port still in use.

#![allow(unsafe_code)]

use std::collections::BTreeSet;
use std::ffi::{c_char, CStr, CString};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use dpdk_sys as sys;

use crate::error::{Error, Result};
use crate::ffi;

/// Set by the first [`Eal::init`] of the process, never cleared.
static EAL_TRIED: AtomicBool = AtomicBool::new(false);

/// Ports held by a `Port` or an `EthDev` adapter (one EAL per process, so
/// the set is the process's).
static CLAIMED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// Live [`EalUse`] guards.
static USERS: AtomicUsize = AtomicUsize::new(0);

/// Keeps the EAL from being cleaned up while alive (see the module docs);
/// made from an [`Eal`], so only once the EAL is initialised.
#[derive(Debug)]
pub(crate) struct EalUse(());

impl EalUse {
    /// A guard for the initialised `eal`.
    pub(crate) fn new(_eal: &Eal) -> EalUse {
        USERS.fetch_add(1, Ordering::SeqCst);
        EalUse(())
    }
}

impl Drop for EalUse {
    fn drop(&mut self) {
        USERS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Lines of EAL's stderr an [`Error::EalInit`] quotes (the last ones).
const CAUSE_LINES: usize = 4;

/// Descriptors of each ring of a ring cable (see [`Eal::ring_cable`]).
const CABLE_RING_SIZE: u32 = 1024;

/// A DPDK port id, as `rte_ethdev` numbers ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(pub u16);

/// The initialised EAL of this process. Not `Send`: it is cleaned up on the
/// thread that initialised it, DPDK's main lcore.
#[derive(Debug)]
pub struct Eal {
    runtime_dir: Option<PathBuf>,
    _main_lcore: PhantomData<*const ()>,
}

impl Eal {
    /// Initialises DPDK with `args` (without a program name; one is
    /// prepended). DPDK's log goes to stderr, leaving stdout to the program:
    /// what EAL writes while it starts is captured (see [`Quiet`]) and, if it
    /// starts, handed on to stderr; if it does not, the error carries what
    /// EAL said about the cause ([`Error::EalInit`]) and its usage text is
    /// dropped. `-h`/`--help` are refused: EAL would print its usage and end
    /// the process. The argument strings are leaked: EAL may keep pointers
    /// into them for the life of the process.
    pub fn init<I, S>(args: I) -> Result<Eal>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut argv: Vec<*mut c_char> = vec![leak("dtnet")?];
        for arg in args {
            let arg = arg.as_ref();
            if arg == "-h" || arg == "--help" {
                return Err(Error::BadArgument(format!("{arg}: EAL would print its usage and exit the process")));
            }
            argv.push(leak(arg)?);
        }
        if EAL_TRIED.swap(true, Ordering::SeqCst) {
            return Err(Error::EalAlreadyInitialised);
        }
        // SAFETY: no arguments; rte_openlog_stream may be called before
        // rte_eal_init (the stream it sets wins over EAL's default).
        unsafe { sys::dtnet_rte_log_to_stderr() };
        let argc = i32::try_from(argv.len()).map_err(|_| Error::BadArgument("(too many arguments)".into()))?;
        argv.push(std::ptr::null_mut());
        let quiet = Quiet::start();
        // SAFETY: argv holds argc pointers to leaked NUL-terminated strings
        // and a NULL, as C's main() would; EAL may permute the array, which
        // is ours and unused afterwards. EAL_TRIED makes this the only call.
        let ret = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        // SAFETY: reads the calling thread's rte_errno; no arguments.
        let errno = unsafe { sys::dtnet_rte_errno() };
        let said = quiet.map(Quiet::finish).unwrap_or_default();
        if ret < 0 {
            return Err(Error::EalInit { errno, message: ffi::strerror(errno), said: cause(&said.stderr) });
        }
        // Best effort: EAL's log of a successful start is not worth failing for.
        let _ = std::io::stderr().write_all(format!("{}{}", said.stderr, said.stdout).as_bytes());
        // SAFETY: EAL is initialised; the call has no arguments.
        let primary = unsafe { sys::rte_eal_process_type() } == sys::RTE_PROC_PRIMARY;
        Ok(Eal { runtime_dir: primary.then(runtime_dir), _main_lcore: PhantomData })
    }

    /// The runtime directory this primary process removes on drop (`None`
    /// for a secondary process, which leaves it to the primary).
    pub fn runtime_dir(&self) -> Option<&Path> {
        self.runtime_dir.as_deref()
    }

    /// The port named `name` (a vdev name such as `net_ring0`, or a PCI
    /// address given with `-a`).
    pub fn port_by_name(&self, name: &str) -> Result<PortId> {
        let cname = CString::new(name).map_err(|_| Error::BadArgument(format!("{name:?} contains a NUL byte")))?;
        let mut id = 0u16;
        // SAFETY: cname is NUL-terminated and id a valid out-pointer, both
        // live across the call.
        let ret = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if ret < 0 {
            return Err(Error::NoSuchDevice(name.into()));
        }
        Ok(PortId(id))
    }

    /// The ids of all ports EAL probed or created, in order.
    pub fn ports(&self) -> Vec<PortId> {
        let mut ports = Vec::new();
        let mut next = 0u64;
        loop {
            // SAFETY: a plain lookup over port ids; owner 0 means "not owned".
            let id = unsafe { sys::rte_eth_find_next_owned_by(next as u16, 0) };
            if id >= sys::DTNET_ETH_MAX_PORTS as u64 {
                return ports;
            }
            ports.push(PortId(id as u16));
            next = id + 1;
        }
    }

    /// Creates two `net_ring` ports, `<name>_a` and `<name>_b`, cabled back
    /// to back: `queues` rings carry a's tx queue i to b's rx queue i and as
    /// many carry b's to a's. The rings live until the EAL is cleaned up.
    pub fn ring_cable(&self, name: &str, queues: u16) -> Result<(PortId, PortId)> {
        let a_to_b = self.rings(&format!("{name}_ab"), queues)?;
        let b_to_a = self.rings(&format!("{name}_ba"), queues)?;
        let a = self.port_from_rings(&format!("{name}_a"), &b_to_a, &a_to_b)?;
        let b = self.port_from_rings(&format!("{name}_b"), &a_to_b, &b_to_a)?;
        Ok((a, b))
    }

    /// `count` single-producer single-consumer rte_rings named `<prefix>_<i>`.
    fn rings(&self, prefix: &str, count: u16) -> Result<Vec<NonNull<sys::rte_ring>>> {
        (0..count)
            .map(|i| {
                let name = format!("{prefix}_{i}");
                let cname = CString::new(name.as_str())
                    .map_err(|_| Error::BadArgument(format!("{name:?} contains a NUL byte")))?;
                let flags = (sys::DTNET_RING_F_SP_ENQ | sys::DTNET_RING_F_SC_DEQ) as u32;
                // SAFETY: cname is NUL-terminated and lives across the call;
                // EAL is initialised (self exists).
                let ring =
                    unsafe { sys::rte_ring_create(cname.as_ptr(), CABLE_RING_SIZE, sys::DTNET_SOCKET_ID_ANY, flags) };
                NonNull::new(ring).ok_or_else(|| ffi::errno_error(format!("rte_ring_create({name})")))
            })
            .collect()
    }

    /// A net_ring port that receives from `rx` and transmits into `tx`.
    fn port_from_rings(
        &self,
        name: &str,
        rx: &[NonNull<sys::rte_ring>],
        tx: &[NonNull<sys::rte_ring>],
    ) -> Result<PortId> {
        let cname = CString::new(name).map_err(|_| Error::BadArgument(format!("{name:?} contains a NUL byte")))?;
        let rx: Vec<*mut sys::rte_ring> = rx.iter().map(|r| r.as_ptr()).collect();
        let tx: Vec<*mut sys::rte_ring> = tx.iter().map(|r| r.as_ptr()).collect();
        // SAFETY: the arrays hold valid rings that are never freed while EAL
        // runs; DPDK copies the arrays; cname is NUL-terminated.
        let ret = unsafe {
            sys::rte_eth_from_rings(
                cname.as_ptr(),
                rx.as_ptr(),
                rx.len() as u32,
                tx.as_ptr(),
                tx.len() as u32,
                sys::DTNET_SOCKET_ID_ANY as u32,
            )
        };
        ffi::check(ret, || format!("rte_eth_from_rings({name})")).map(|id| PortId(id as u16))
    }

    /// Records that a [`crate::Port`] or adapter holds `port`; `false` if
    /// one already does.
    pub(crate) fn claim(&self, port: PortId) -> bool {
        CLAIMED.lock().unwrap_or_else(|e| e.into_inner()).insert(port.0)
    }

    /// Releases a claim of [`Eal::claim`] (callable without the `Eal`, by
    /// an adapter on any thread).
    pub(crate) fn release(port: PortId) {
        CLAIMED.lock().unwrap_or_else(|e| e.into_inner()).remove(&port.0);
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        if USERS.load(Ordering::SeqCst) > 0 {
            // An adapter still uses DPDK: leave the EAL to the process's exit.
            return;
        }
        // SAFETY: every pool and port borrowed self and is gone, and no
        // EalUse is alive (none can be made without self); EAL was
        // initialised once by this value.
        unsafe { sys::rte_eal_cleanup() };
        if let Some(dir) = &self.runtime_dir {
            // Best effort: a directory that is already gone is fine.
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// What EAL wrote while it started.
#[derive(Debug, Default)]
struct Said {
    stdout: String,
    stderr: String,
}

/// The process's stdout and stderr redirected into memory files while EAL
/// starts. On bad arguments EAL prints its whole usage text on stdout
/// (with `printf`, which dtnet cannot turn off: the usage is printed before
/// `rte_eal_init` returns, and no argument avoids it), and the cause (C's
/// getopt naming the option, EAL's log) on stderr. A program whose stdout
/// is a report must not get pages of usage in it, so file descriptors 1
/// and 2 point at memory files until EAL returns. This is process-wide:
/// whatever another thread writes meanwhile is captured too (and handed on
/// to stderr after a successful start).
struct Quiet {
    stdout: (OwnedFd, File),
    stderr: (OwnedFd, File),
}

impl Quiet {
    /// Redirects fds 1 and 2 into memory files; `None` (nothing captured)
    /// if the system cannot, so EAL then writes where it always would.
    fn start() -> Option<Quiet> {
        flush_stdio();
        let stdout = Quiet::redirect(std::io::stdout().as_fd(), |f| rustix::stdio::dup2_stdout(f), "dtnet-eal-stdout")?;
        let stderr = Quiet::redirect(std::io::stderr().as_fd(), |f| rustix::stdio::dup2_stderr(f), "dtnet-eal-stderr");
        let Some(stderr) = stderr else {
            let _ = rustix::stdio::dup2_stdout(&stdout.0);
            return None;
        };
        Some(Quiet { stdout, stderr })
    }

    /// Points `fd` (via `dup2`) at a new memory file named `name`; the
    /// saved original and the file.
    fn redirect(fd: BorrowedFd<'_>, dup2: fn(&File) -> rustix::io::Result<()>, name: &str) -> Option<(OwnedFd, File)> {
        let file = File::from(rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC).ok()?);
        let saved = rustix::io::dup(fd).ok()?;
        dup2(&file).ok()?;
        Some((saved, file))
    }

    /// Puts fds 1 and 2 back and returns what was written to them.
    fn finish(self) -> Said {
        flush_stdio();
        let _ = rustix::stdio::dup2_stdout(&self.stdout.0);
        let _ = rustix::stdio::dup2_stderr(&self.stderr.0);
        Said { stdout: read_all(self.stdout.1), stderr: read_all(self.stderr.1) }
    }
}

/// Flushes Rust's and C's stdout and stderr buffers.
fn flush_stdio() {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: fflush on C's own stdout and stderr; no arguments.
    unsafe { sys::dtnet_stdio_flush() };
}

/// The text of a memory file, from its start.
fn read_all(mut file: File) -> String {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0)).and_then(|_| file.read_to_string(&mut text));
    text
}

/// The cause EAL gave on stderr, one line per statement: its last few
/// lines, without blanks, without its inventory of the machine (`EAL:
/// Detected ...`) and without the log's copy of a `FATAL:` line.
fn cause(stderr: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    let said = stderr.lines().map(|l| l.trim().replace("FATAL: ", ""));
    for line in said.filter(|l| !l.is_empty() && !l.starts_with("EAL: Detected")) {
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    let skip = lines.len().saturating_sub(CAUSE_LINES);
    lines[skip..].join("; ")
}

/// `text` as a leaked C string EAL may keep for the life of the process.
fn leak(text: &str) -> Result<*mut c_char> {
    let c = CString::new(text).map_err(|_| Error::BadArgument(format!("EAL argument {text:?} contains a NUL byte")))?;
    Ok(c.into_raw())
}

/// EAL's runtime directory (where `--file-prefix` files live).
fn runtime_dir() -> PathBuf {
    // SAFETY: EAL is initialised; the result is a NUL-terminated string EAL
    // owns for its lifetime, copied at once.
    let dir = unsafe { CStr::from_ptr(sys::rte_eal_get_runtime_dir()) };
    PathBuf::from(dir.to_string_lossy().into_owned())
}
