//! Opening a domain as primary or secondary, its named objects, and
//! cleaning up after the last process.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};

use super::dir::{self, make_private_dir, open_file};
use super::layout::{check_name, Entry, Layout, DATA_START};
use super::map::Mapping;
use super::ShmError;

const MEMORY: &str = "memory";
const PRIMARY_LOCK: &str = "primary.lock";
const PROCS_LOCK: &str = "procs.lock";
const REGISTRY_LOCK: &str = "registry.lock";

/// Which part a process plays in its domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Creates the domain's memory; only one per live prefix.
    Primary,
    /// Attaches to the memory of a running primary.
    Secondary,
    /// Primary if none is running, else secondary (DPDK `--proc-type auto`).
    Auto,
}

/// Where and how big a domain is, and how long a secondary waits for its primary.
#[derive(Clone, Debug)]
pub struct DomainOptions {
    /// The base runtime directory ([`dir::base_dir`] by default).
    pub base: PathBuf,
    /// Bytes of shared memory a primary creates (sparse until touched).
    pub size: usize,
    /// How long a secondary waits for a primary before giving up.
    pub wait: Duration,
}

impl Default for DomainOptions {
    fn default() -> Self {
        DomainOptions { base: dir::base_dir(), size: 64 << 20, wait: Duration::ZERO }
    }
}

/// One process's handle on a domain. Dropping it detaches; the last
/// process to detach removes the domain's directory.
#[derive(Debug)]
pub struct Domain {
    prefix: String,
    dir: PathBuf,
    primary: bool,
    map: Arc<Mapping>,
    /// Held exclusively by the primary; a secondary keeps it open to ask.
    primary_lock: File,
    /// Held shared by every attached process.
    procs_lock: Option<File>,
}

/// A named object's memory: a byte range of the domain, reachable only as atomics.
#[derive(Clone, Debug)]
pub struct Zone {
    map: Arc<Mapping>,
    entry: Entry,
}

impl Zone {
    /// The object's name.
    pub fn name(&self) -> &str {
        &self.entry.name
    }

    /// Its byte offset in the domain: the same in every process.
    pub fn offset(&self) -> usize {
        self.entry.offset
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.entry.len
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.entry.len == 0
    }

    /// The whole object as 64-bit words (a trailing partial word is left out).
    pub fn u64s(&self) -> &[AtomicU64] {
        self.map.u64s(self.entry.offset, self.entry.len / 8).unwrap_or_default()
    }

    /// The whole object as 32-bit words.
    pub fn u32s(&self) -> &[AtomicU32] {
        self.map.u32s(self.entry.offset, self.entry.len / 4).unwrap_or_default()
    }

    /// The mapping, the object's first byte and its length, for laying a
    /// pool or ring out in it (`crate::region`); `None` if the entry lies
    /// outside the mapping.
    pub(crate) fn raw(&self) -> Option<(Arc<Mapping>, std::ptr::NonNull<u8>, usize)> {
        let base = self.map.bytes(self.entry.offset, self.entry.len)?;
        Some((Arc::clone(&self.map), base, self.entry.len))
    }
}

/// What `list` knows of a domain without attaching to it.
#[derive(Clone, Debug)]
pub struct DomainInfo {
    /// Its prefix.
    pub prefix: String,
    /// The live primary's pid, if one runs.
    pub primary: Option<u32>,
    /// Whether any process is attached.
    pub attached: bool,
    /// Its objects, or why they could not be read.
    pub objects: Result<Vec<Entry>, String>,
}

impl Domain {
    /// Opens domain `prefix` in `role`.
    pub fn open(prefix: &str, role: Role, options: &DomainOptions) -> Result<Domain, ShmError> {
        let dir = dir::domain_dir(&options.base, prefix)?;
        match role {
            Role::Primary => Self::create(prefix, dir, options),
            Role::Secondary => Self::attach(prefix, dir, options),
            Role::Auto => match Self::create(prefix, dir.clone(), options) {
                Err(ShmError::PrimaryRunning { .. }) => Self::attach(prefix, dir, options),
                other => other,
            },
        }
    }

    fn create(prefix: &str, dir: PathBuf, options: &DomainOptions) -> Result<Domain, ShmError> {
        make_private_dir(&dir)?;
        let primary_lock =
            lock(&dir.join(PRIMARY_LOCK), FlockOperation::NonBlockingLockExclusive)?.ok_or_else(|| {
                ShmError::PrimaryRunning { prefix: prefix.into(), pid: read_owner(&dir).map_or(0, |o| o.1) }
            })?;
        let procs_lock = lock(&dir.join(PROCS_LOCK), FlockOperation::NonBlockingLockExclusive)?
            .ok_or_else(|| ShmError::StillAttached { prefix: prefix.into() })?;
        let size = options.size.max(DATA_START).next_multiple_of(4096);
        let nonce = nonce();
        let map = Arc::new(new_memory(&dir, size, nonce)?);
        write_owner(&dir, &primary_lock, nonce)?;
        flock(&procs_lock, FlockOperation::LockShared).map_err(|e| ShmError::io(&dir.join(PROCS_LOCK), e))?;
        Ok(Domain { prefix: prefix.into(), dir, primary: true, map, primary_lock, procs_lock: Some(procs_lock) })
    }

    fn attach(prefix: &str, dir: PathBuf, options: &DomainOptions) -> Result<Domain, ShmError> {
        let started = Instant::now();
        loop {
            if let Some(domain) = Self::try_attach(prefix, &dir)? {
                return Ok(domain);
            }
            if started.elapsed() >= options.wait {
                return Err(ShmError::NoPrimary { prefix: prefix.into(), waited_ms: started.elapsed().as_millis() });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Attaches if a live primary has finished making the memory.
    fn try_attach(prefix: &str, dir: &Path) -> Result<Option<Domain>, ShmError> {
        let primary_lock = match open_file(&dir.join(PRIMARY_LOCK), false) {
            Ok(file) => file,
            // No primary yet, or none any more; another user's domain is an error.
            Err(e) if e.kind() != std::io::ErrorKind::PermissionDenied => return Ok(None),
            Err(e) => return Err(ShmError::io(&dir.join(PRIMARY_LOCK), e)),
        };
        let Some((nonce, _)) = read_owner(dir).filter(|_| holds_lock(&primary_lock)) else { return Ok(None) };
        let Some(procs_lock) = lock(&dir.join(PROCS_LOCK), FlockOperation::LockShared)? else { return Ok(None) };
        let Ok(file) = open_file(&dir.join(MEMORY), false) else { return Ok(None) };
        let len = file.metadata().map_err(|e| ShmError::io(&dir.join(MEMORY), e))?.len() as usize;
        if len < DATA_START {
            return Ok(None);
        }
        let map = Mapping::new(&file, len).map_err(|e| ShmError::io(&dir.join(MEMORY), e))?;
        let layout = Layout::of(&map).ok_or_else(|| ShmError::Corrupt("too small for a header".into()))?;
        // A memory file of an earlier primary, or one still being written, is not ours to attach to.
        if !layout.ready() || layout.nonce() != nonce {
            return Ok(None);
        }
        layout.check()?;
        let map = Arc::new(map);
        let (prefix, dir) = (prefix.to_owned(), dir.to_owned());
        Ok(Some(Domain { prefix, dir, primary: false, map, primary_lock, procs_lock: Some(procs_lock) }))
    }

    /// The domain's prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Its runtime directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether this process is the domain's primary.
    pub fn is_primary(&self) -> bool {
        self.primary
    }

    /// Whether the primary still lives (always, for the primary itself). A
    /// killed primary's lock is dropped by the kernel, so this notices a
    /// `kill -9` at once.
    pub fn primary_alive(&self) -> bool {
        self.primary || holds_lock(&self.primary_lock)
    }

    fn layout(&self) -> Result<Layout<'_>, ShmError> {
        Layout::of(&self.map).ok_or_else(|| ShmError::Corrupt("too small for a header".into()))
    }

    /// Creates object `name` of `len` bytes, zeroed (`rte_memzone_reserve`).
    pub fn reserve(&self, name: &str, len: usize) -> Result<Zone, ShmError> {
        check_name(name)?;
        let path = self.dir.join(REGISTRY_LOCK);
        let _registry = lock(&path, FlockOperation::LockExclusive)?
            .ok_or_else(|| ShmError::io(&path, std::io::ErrorKind::WouldBlock))?;
        let layout = self.layout()?;
        if layout.find(name).is_some() {
            return Err(ShmError::Exists { prefix: self.prefix.clone(), name: name.into() });
        }
        let entry = layout.add(name, len)?;
        Ok(Zone { map: Arc::clone(&self.map), entry })
    }

    /// Finds object `name` (`rte_memzone_lookup`).
    pub fn lookup(&self, name: &str) -> Result<Zone, ShmError> {
        let missing = || ShmError::NotFound { prefix: self.prefix.clone(), name: name.into() };
        let entry = self.layout()?.find(name).ok_or_else(missing)??;
        Ok(Zone { map: Arc::clone(&self.map), entry })
    }

    /// Every object of the domain.
    pub fn objects(&self) -> Result<Vec<Entry>, ShmError> {
        self.layout()?.entries().into_iter().collect()
    }

    /// Removes domain `prefix` under `options.base`, refusing while any
    /// process is attached to it.
    pub fn clean(prefix: &str, options: &DomainOptions) -> Result<(), ShmError> {
        let dir = dir::domain_dir(&options.base, prefix)?;
        if !dir.exists() {
            return Err(ShmError::io(&dir, std::io::ErrorKind::NotFound));
        }
        match lock(&dir.join(PROCS_LOCK), FlockOperation::NonBlockingLockExclusive)? {
            Some(_held) => remove_domain(&dir),
            None => Err(ShmError::InUse { prefix: prefix.into(), primary: live_primary(&dir) }),
        }
    }

    /// The domains under `base`, in name order.
    pub fn list(base: &Path) -> Vec<DomainInfo> {
        let Ok(dirs) = fs::read_dir(base) else { return Vec::new() };
        let mut names: Vec<String> = dirs.flatten().filter_map(|d| d.file_name().into_string().ok()).collect();
        names.sort();
        names.into_iter().filter(|n| dir::check_prefix(n).is_ok()).map(|n| info(base, n)).collect()
    }
}

impl Drop for Domain {
    fn drop(&mut self) {
        // Unlock by closing; if nobody else holds the domain now, remove it.
        self.procs_lock = None;
        if self.primary {
            let _ = self.primary_lock.set_len(0);
            let _ = flock(&self.primary_lock, FlockOperation::Unlock);
        }
        if let Ok(Some(_held)) = lock(&self.dir.join(PROCS_LOCK), FlockOperation::NonBlockingLockExclusive) {
            let _ = remove_domain(&self.dir);
        }
    }
}

fn info(base: &Path, prefix: String) -> DomainInfo {
    let dir = base.join(&prefix);
    let attached = matches!(lock(&dir.join(PROCS_LOCK), FlockOperation::NonBlockingLockShared), Ok(Some(_)))
        && !matches!(lock(&dir.join(PROCS_LOCK), FlockOperation::NonBlockingLockExclusive), Ok(Some(_)));
    let objects = peek_objects(&dir).map_err(|e| e.to_string());
    DomainInfo { primary: live_primary(&dir), attached, objects, prefix }
}

/// Reads the object table without attaching.
fn peek_objects(dir: &Path) -> Result<Vec<Entry>, ShmError> {
    let path = dir.join(MEMORY);
    let file = open_file(&path, false).map_err(|e| ShmError::io(&path, e))?;
    let len = file.metadata().map_err(|e| ShmError::io(&path, e))?.len() as usize;
    let map = Mapping::new(&file, len).map_err(|e| ShmError::io(&path, e))?;
    let layout = Layout::of(&map).ok_or_else(|| ShmError::Corrupt("too small for a header".into()))?;
    layout.check()?;
    layout.entries().into_iter().collect()
}

/// Opens `path` (creating it) and takes `op` on it; `None` if a
/// non-blocking lock is held elsewhere. The lock is retried if the file was
/// removed and replaced meanwhile, so a lock is never held on a file that
/// no longer has the name.
fn lock(path: &Path, op: FlockOperation) -> Result<Option<File>, ShmError> {
    loop {
        let file = open_file(path, true).map_err(|e| ShmError::io(path, e))?;
        match flock(&file, op) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
            Err(e) => return Err(ShmError::io(path, e)),
        }
        let same = match (file.metadata(), fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if same {
            return Ok(Some(file));
        }
    }
}

/// Whether another process holds an exclusive lock on `file`.
fn holds_lock(file: &File) -> bool {
    match flock(file, FlockOperation::NonBlockingLockShared) {
        Ok(()) => {
            let _ = flock(file, FlockOperation::Unlock);
            false
        }
        Err(_) => true,
    }
}

fn live_primary(dir: &Path) -> Option<u32> {
    let file = open_file(&dir.join(PRIMARY_LOCK), false).ok()?;
    holds_lock(&file).then(|| read_owner(dir).map(|o| o.1)).flatten()
}

/// The primary's nonce and pid, as it wrote them into its lock file.
fn read_owner(dir: &Path) -> Option<(u64, u32)> {
    let mut text = String::new();
    File::open(dir.join(PRIMARY_LOCK)).ok()?.read_to_string(&mut text).ok()?;
    let mut words = text.split_whitespace();
    Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
}

fn write_owner(dir: &Path, mut file: &File, nonce: u64) -> Result<(), ShmError> {
    let path = dir.join(PRIMARY_LOCK);
    file.set_len(0).map_err(|e| ShmError::io(&path, e))?;
    writeln!(file, "{nonce} {}", std::process::id()).map_err(|e| ShmError::io(&path, e))
}

/// Makes a fresh memory file under a temporary name and renames it into
/// place, so a secondary never maps a file that is later truncated.
fn new_memory(dir: &Path, size: usize, nonce: u64) -> Result<Mapping, ShmError> {
    let tmp = dir.join(format!("{MEMORY}.{}", std::process::id()));
    let file = open_file(&tmp, true).map_err(|e| ShmError::io(&tmp, e))?;
    file.set_len(0).and_then(|()| file.set_len(size as u64)).map_err(|e| ShmError::io(&tmp, e))?;
    let map = Mapping::new(&file, size).map_err(|e| ShmError::io(&tmp, e))?;
    Layout::of(&map).ok_or_else(|| ShmError::Corrupt("too small for a header".into()))?.init(nonce);
    fs::rename(&tmp, dir.join(MEMORY)).map_err(|e| ShmError::io(&tmp, e))?;
    Ok(map)
}

fn remove_domain(dir: &Path) -> Result<(), ShmError> {
    fs::remove_dir_all(dir).map_err(|e| ShmError::io(dir, e))
}

/// A number that tells this primary's memory from any earlier one's.
fn nonce() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id()).rotate_left(40)
}
