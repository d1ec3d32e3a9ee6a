//! The layout of a domain's memory file: a header, a table of named
//! objects, then the objects themselves.
//!
//! ```text
//! 0      header: magic, layout version, size, next free offset,
//!        object count, nonce of the primary that made it
//! 64     object table: MAX_OBJECTS entries of 64 bytes
//!        (name: 40 bytes, offset, length, reserved)
//! 16384  objects, each 64-byte aligned, handed out by a bump allocator
//! ```
//!
//! Every word is an atomic `u64` in the file, so every field is read and
//! written whole whatever other processes do. Anything read back (count,
//! offsets, lengths) is checked against the size before it is used: a
//! process that scribbles on the header can make lookups fail, never make
//! another process touch memory outside the file.

use std::sync::atomic::{AtomicU64, Ordering};

use super::map::Mapping;
use super::ShmError;

/// "dtnetdom", little-endian: the first word of every domain file.
pub const MAGIC: u64 = u64::from_le_bytes(*b"dtnetdom");
/// Bumped whenever this layout changes; a domain of another version is refused.
pub const LAYOUT_VERSION: u64 = 1;
/// Named objects a domain can hold.
pub const MAX_OBJECTS: usize = 128;
/// Longest object name, in bytes.
pub const MAX_NAME: usize = 40;
/// Where objects start.
pub const DATA_START: usize = 16 * 1024;
/// Alignment of every object (a cache line).
pub const OBJECT_ALIGN: usize = 64;

const HEADER_WORDS: usize = 8;
const ENTRY_WORDS: usize = 8;
const NAME_WORDS: usize = MAX_NAME / 8;

/// Header word indices.
#[derive(Clone, Copy)]
enum Field {
    Magic = 0,
    Version = 1,
    Size = 2,
    Next = 3,
    Count = 4,
    Nonce = 5,
}

/// A named object's place in the domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The object's name.
    pub name: String,
    /// Byte offset from the start of the file.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
}

/// A view of the header and object table of a mapped domain file.
pub(crate) struct Layout<'a> {
    header: &'a [AtomicU64],
    table: &'a [AtomicU64],
    size: usize,
}

impl<'a> Layout<'a> {
    /// The header and table of `map`, if the mapping is big enough to hold them.
    pub(crate) fn of(map: &'a Mapping) -> Option<Layout<'a>> {
        if map.len() < DATA_START {
            return None;
        }
        let header = map.u64s(0, HEADER_WORDS)?;
        let table = map.u64s(HEADER_WORDS * 8, MAX_OBJECTS * ENTRY_WORDS)?;
        Some(Layout { header, table, size: map.len() })
    }

    fn get(&self, field: Field) -> u64 {
        self.header[field as usize].load(Ordering::Acquire)
    }

    fn set(&self, field: Field, value: u64) {
        self.header[field as usize].store(value, Ordering::Release);
    }

    /// Writes a fresh header (magic last, so a reader that sees the magic
    /// sees the rest) for a primary identified by `nonce`.
    pub(crate) fn init(&self, nonce: u64) {
        self.set(Field::Version, LAYOUT_VERSION);
        self.set(Field::Size, self.size as u64);
        self.set(Field::Next, DATA_START as u64);
        self.set(Field::Count, 0);
        self.set(Field::Nonce, nonce);
        self.set(Field::Magic, MAGIC);
    }

    /// Whether a primary has finished writing the header.
    pub(crate) fn ready(&self) -> bool {
        self.get(Field::Magic) == MAGIC
    }

    /// The nonce of the primary that wrote the header.
    pub(crate) fn nonce(&self) -> u64 {
        self.get(Field::Nonce)
    }

    /// Refuses a header of another layout version or size.
    pub(crate) fn check(&self) -> Result<(), ShmError> {
        let version = self.get(Field::Version);
        if version != LAYOUT_VERSION {
            return Err(ShmError::Version { found: version, expected: LAYOUT_VERSION });
        }
        let size = self.get(Field::Size);
        if size != self.size as u64 {
            return Err(ShmError::Corrupt(format!("header says {size} bytes, the file has {}", self.size)));
        }
        Ok(())
    }

    /// Objects in the table (bounded by the table's size whatever the count says).
    pub(crate) fn entries(&self) -> Vec<Result<Entry, ShmError>> {
        let count = (self.get(Field::Count) as usize).min(MAX_OBJECTS);
        (0..count).map(|i| self.entry(i)).collect()
    }

    /// The entry named `name`.
    pub(crate) fn find(&self, name: &str) -> Option<Result<Entry, ShmError>> {
        let count = (self.get(Field::Count) as usize).min(MAX_OBJECTS);
        (0..count).find(|&i| self.name_at(i).as_deref() == Some(name)).map(|i| self.entry(i))
    }

    fn words(&self, i: usize) -> &[AtomicU64] {
        &self.table[i * ENTRY_WORDS..(i + 1) * ENTRY_WORDS]
    }

    fn name_at(&self, i: usize) -> Option<String> {
        let bytes: Vec<u8> =
            self.words(i)[..NAME_WORDS].iter().flat_map(|w| w.load(Ordering::Acquire).to_le_bytes()).collect();
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(MAX_NAME);
        String::from_utf8(bytes[..end].to_vec()).ok()
    }

    /// Entry `i`, its offset and length checked against the file.
    fn entry(&self, i: usize) -> Result<Entry, ShmError> {
        let words = self.words(i);
        let name =
            self.name_at(i).ok_or_else(|| ShmError::Corrupt(format!("object {i} has a name that is not UTF-8")))?;
        let offset = words[NAME_WORDS].load(Ordering::Acquire) as usize;
        let len = words[NAME_WORDS + 1].load(Ordering::Acquire) as usize;
        let fits = offset >= DATA_START
            && offset.is_multiple_of(OBJECT_ALIGN)
            && offset.checked_add(len).is_some_and(|e| e <= self.size);
        if !fits {
            return Err(ShmError::Corrupt(format!(
                "object {name:?} claims bytes {offset}+{len} of a {}-byte domain",
                self.size
            )));
        }
        Ok(Entry { name, offset, len })
    }

    /// Adds `name` with `len` bytes. The caller holds the registry lock,
    /// so no other writer runs; readers see the entry once the count moves.
    pub(crate) fn add(&self, name: &str, len: usize) -> Result<Entry, ShmError> {
        let count = self.get(Field::Count) as usize;
        if count >= MAX_OBJECTS {
            return Err(ShmError::Full(format!("the object table holds {MAX_OBJECTS} objects")));
        }
        let offset = (self.get(Field::Next) as usize).max(DATA_START).next_multiple_of(OBJECT_ALIGN);
        let end = offset.checked_add(len).filter(|&e| e <= self.size).ok_or_else(|| {
            ShmError::Full(format!(
                "{name:?} needs {len} bytes, {} of {} are free",
                self.size.saturating_sub(offset),
                self.size
            ))
        })?;
        let words = self.words(count);
        let mut name_bytes = [0u8; MAX_NAME];
        name_bytes[..name.len()].copy_from_slice(name.as_bytes());
        for (word, chunk) in words.iter().zip(name_bytes.chunks(8)) {
            word.store(u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])), Ordering::Release);
        }
        words[NAME_WORDS].store(offset as u64, Ordering::Release);
        words[NAME_WORDS + 1].store(len as u64, Ordering::Release);
        self.set(Field::Next, end as u64);
        self.set(Field::Count, count as u64 + 1);
        Ok(Entry { name: name.to_owned(), offset, len })
    }
}

/// Refuses names that do not fit the table or are not printable ASCII.
pub fn check_name(name: &str) -> Result<(), ShmError> {
    let ok = !name.is_empty() && name.len() < MAX_NAME && name.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(ShmError::BadName { name: name.escape_debug().to_string(), max: MAX_NAME - 1 })
    }
}
