//! The file cache: what a request for a file needs to know about it (its canonical path,
//! validators, type, and for small files the bytes), kept under the path the URL named, and
//! used only while one `stat` of that path says it still names the same, unchanged file.
//!
//! Owns the cache's bounds (bytes, entries, the largest file kept in memory), its eviction
//! (oldest entry first) and the identity rule below. Never reads a file on the lookup path (a
//! lookup is one `stat`, or an `open` and an `fstat`), so the I/O loop may use it; loading is
//! done by a worker ([`FileCache::load`]).
//!
//! Files up to [`MAX_IN_MEMORY`] are held in memory (their head and body then leave in one
//! write). Larger ones keep only what was learnt about them: the request skips the path checks,
//! and the body is sent from a fresh descriptor, with `sendfile` where the transport can.
//!
//! ## Staying right when files change
//!
//! Every use revalidates: [`FileCache::lookup`] stats the path, or opens it and stats the open
//! file (following symlinks either way, like the lookup that first found the file), and compares device, inode, size, modification time and
//! change time, to the nanosecond, with what they were when the bytes were read. A file written
//! in place changes its times and size; a file replaced (renamed over, a symlink repointed)
//! changes its inode. Any difference is a miss, and the request takes the full path again (the
//! canonical-path check, `open`, `fstat`), which reloads the entry. So the bytes, `ETag` and
//! `Last-Modified` served from the cache are always those of the file the path names at that
//! moment. A load is kept only if `fstat` gives the same identity before and after the read, the
//! read returned exactly the size, and the file's change time is at least [`SETTLE`] old: file
//! systems stamp times from a coarse clock (a few milliseconds), so two same-size writes within
//! one tick can leave identical times. A file changed less than `SETTLE` ago is served from
//! disk, not cached, until it has settled (git's "racily clean" rule); any change after the
//! read then carries a later change time, which the lookup sees.
//!
//! Identity needs the inode, so the cache is on for Unix only: elsewhere every lookup misses and
//! every request takes the full path, as before the cache existed.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::conditional::Validators;

/// Files up to this size are held in memory (the encoder copies bodies this small behind the
/// head); larger ones are sent from the file.
pub(super) const MAX_IN_MEMORY: u64 = 16 * 1024;
/// The cache holds at most this many bytes of file contents, paths and entries.
const MAX_TOTAL_BYTES: usize = 32 * 1024 * 1024;
/// The cache holds at most this many entries.
const MAX_ENTRIES: usize = 4096;
/// A file is cached only once its change time is this far in the past.
pub(super) const SETTLE: Duration = Duration::from_secs(1);

/// What says a path still names the file that was read: device, inode, size, and the
/// modification and change times in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Identity {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    /// The identity of the file `metadata` describes; `None` where the platform has no inode.
    #[cfg(unix)]
    pub(super) fn of(metadata: &Metadata) -> Option<Identity> {
        use std::os::unix::fs::MetadataExt;
        Some(Identity {
            dev: metadata.dev(),
            ino: metadata.ino(),
            len: metadata.size(),
            mtime: (metadata.mtime(), metadata.mtime_nsec()),
            ctime: (metadata.ctime(), metadata.ctime_nsec()),
        })
    }

    /// Whether the file last changed at least `settle` ago (by the system clock).
    fn settled(&self, settle: Duration) -> bool {
        let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH) else { return false };
        let (secs, nanos) = self.ctime;
        let (Ok(secs), Ok(nanos)) = (u64::try_from(secs), u32::try_from(nanos)) else { return false };
        now.checked_sub(Duration::new(secs, nanos.min(999_999_999))).is_some_and(|age| age >= settle)
    }

    /// The identity of the file `metadata` describes; `None` where the platform has no inode.
    #[cfg(not(unix))]
    pub(super) fn of(metadata: &Metadata) -> Option<Identity> {
        let _ = metadata;
        None
    }
}

/// One cached file.
pub(super) struct Entry {
    identity: Identity,
    /// The size in bytes.
    pub(super) len: u64,
    /// The whole file, if it is at most [`MAX_IN_MEMORY`].
    pub(super) bytes: Option<Vec<u8>>,
    pub(super) validators: Option<Validators>,
    /// `Last-Modified`, formatted once.
    pub(super) last_modified: Option<Vec<u8>>,
    pub(super) content_type: &'static str,
}

impl Entry {
    fn cost(&self, key: &Path) -> usize {
        self.bytes.as_ref().map_or(0, Vec::len) + key.as_os_str().len() + std::mem::size_of::<Entry>()
    }
}

/// A bounded map from a path (the root joined with the URL's checked segments) to the file it
/// named when it was read.
pub(super) struct FileCache {
    inner: Mutex<Inner>,
    /// How long ago a file must have last changed to be cached ([`SETTLE`] but in tests).
    settle: Duration,
}

impl std::fmt::Debug for FileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("FileCache").field("entries", &inner.map.len()).field("bytes", &inner.bytes).finish()
    }
}

impl Default for FileCache {
    fn default() -> Self {
        FileCache { inner: Mutex::default(), settle: SETTLE }
    }
}

#[derive(Default)]
struct Inner {
    map: HashMap<PathBuf, Arc<Entry>>,
    /// Keys in the order they were first inserted: the eviction order. Holds each key of `map`
    /// exactly once (an entry is only ever replaced in place or evicted from the front).
    order: VecDeque<PathBuf>,
    /// Sum of [`Entry::cost`] over `map`.
    bytes: usize,
}

impl FileCache {
    /// The cached file for `path`, if `path` still names the same, unchanged file. For a file
    /// held in memory that is one `stat` of `path`, and no file is returned; otherwise `path` is
    /// opened (following symlinks, as the `stat` would) and its `fstat` compared, and the open
    /// file, at its start, comes with the entry. No read either way.
    pub(super) fn lookup(&self, path: &Path) -> Option<(Arc<Entry>, Option<File>)> {
        let entry = {
            let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if inner.map.is_empty() {
                return None;
            }
            inner.map.get(path).cloned()?
        };
        let (now, file) = if entry.bytes.is_some() {
            (fs::metadata(path).ok()?, None)
        } else {
            let file = File::open(path).ok()?;
            (file.metadata().ok()?, Some(file))
        };
        (Identity::of(&now) == Some(entry.identity)).then_some((entry, file))
    }

    /// Caches the open regular `file` (at its start; `metadata` from its `fstat`) under `key`,
    /// the path the URL named, if it has settled; a small one is read into memory if it
    /// did not change while it was read. On `None`, and for an entry without bytes, the file's
    /// position is unspecified: rewind before using it.
    pub(super) fn load(
        &self,
        key: &Path,
        file: &mut File,
        metadata: &Metadata,
        content_type: &'static str,
    ) -> Option<Arc<Entry>> {
        let identity = Identity::of(metadata)?;
        if !identity.settled(self.settle) {
            return None;
        }
        let bytes = if metadata.len() <= MAX_IN_MEMORY {
            let mut bytes = Vec::with_capacity(metadata.len() as usize);
            // One byte more than the size: a file that grew is seen, not cut.
            file.by_ref().take(metadata.len() + 1).read_to_end(&mut bytes).ok()?;
            let after = file.metadata().ok()?;
            if bytes.len() as u64 != metadata.len() || Identity::of(&after) != Some(identity) {
                return None;
            }
            Some(bytes)
        } else {
            None
        };
        let validators = Validators::of(metadata);
        let last_modified = validators.as_ref().and_then(Validators::last_modified);
        let entry = Arc::new(Entry { identity, len: metadata.len(), bytes, validators, last_modified, content_type });
        self.insert(key, Arc::clone(&entry));
        Some(entry)
    }

    fn insert(&self, key: &Path, entry: Arc<Entry>) {
        let cost = entry.cost(key);
        if cost > MAX_TOTAL_BYTES {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *inner;
        if let Some(old) = inner.map.get_mut(key) {
            // A changed file: replaced in place, keeping its place in the eviction order.
            inner.bytes = inner.bytes - old.cost(key) + cost;
            *old = entry;
        } else {
            inner.map.insert(key.to_path_buf(), entry);
            inner.order.push_back(key.to_path_buf());
            inner.bytes += cost;
        }
        while inner.bytes > MAX_TOTAL_BYTES || inner.map.len() > MAX_ENTRIES {
            let Some(oldest) = inner.order.pop_front() else { break };
            if let Some(evicted) = inner.map.remove(&oldest) {
                inner.bytes -= evicted.cost(&oldest);
            }
        }
    }

    /// Entries and bytes held (for tests).
    #[cfg(all(test, unix))]
    fn size(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap();
        (inner.map.len(), inner.bytes)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("maitred-cache-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn load(cache: &FileCache, path: &Path) -> Option<Arc<Entry>> {
        let mut file = File::open(path).unwrap();
        let metadata = file.metadata().unwrap();
        cache.load(path, &mut file, &metadata, "text/plain")
    }

    fn bytes(entry: Option<Arc<Entry>>) -> Vec<u8> {
        entry.expect("an entry").bytes.clone().expect("bytes in memory")
    }

    #[test]
    fn a_changed_or_replaced_file_is_a_miss() {
        let dir = temp_dir("changed");
        let path = dir.join("a.txt");
        fs::write(&path, b"one").unwrap();
        let cache = FileCache { settle: Duration::ZERO, ..FileCache::default() };
        assert!(cache.lookup(&path).is_none(), "empty cache");
        assert_eq!(bytes(load(&cache, &path)), b"one");
        assert_eq!(bytes(cache.lookup(&path).map(|(entry, _)| entry)), b"one");
        fs::write(&path, b"two!").unwrap();
        assert!(cache.lookup(&path).is_none(), "written in place: size and times changed");
        assert_eq!(bytes(load(&cache, &path)), b"two!");
        // Same size, replaced by a rename: a new inode.
        let other = dir.join("b.txt");
        fs::write(&other, b"2wo!").unwrap();
        fs::rename(&other, &path).unwrap();
        assert!(cache.lookup(&path).is_none(), "renamed over");
        fs::remove_file(&path).unwrap();
        assert!(cache.lookup(&path).is_none(), "gone");
        assert_eq!(cache.size().0, 1, "replaced in place, not added twice");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_changed_within_the_settle_time_is_not_cached() {
        let dir = temp_dir("settle");
        let path = dir.join("fresh.txt");
        fs::write(&path, b"fresh").unwrap();
        let cache = FileCache::default();
        assert!(load(&cache, &path).is_none(), "changed just now");
        assert_eq!(cache.size().0, 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn large_files_keep_no_bytes_and_are_reopened_only_while_unchanged() {
        let dir = temp_dir("large");
        let big = dir.join("big.bin");
        fs::write(&big, vec![7u8; MAX_IN_MEMORY as usize + 1]).unwrap();
        let cache = FileCache { settle: Duration::ZERO, ..FileCache::default() };
        let entry = load(&cache, &big).expect("cached");
        assert!(entry.bytes.is_none());
        assert_eq!(entry.len, MAX_IN_MEMORY + 1);
        let (_, file) = cache.lookup(&big).expect("unchanged");
        assert!(file.is_some(), "opened");
        fs::write(&big, vec![8u8; MAX_IN_MEMORY as usize + 2]).unwrap();
        assert!(cache.lookup(&big).is_none(), "changed since");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_total_is_bounded_oldest_out_first() {
        let dir = temp_dir("bounded");
        let cache = FileCache { settle: Duration::ZERO, ..FileCache::default() };
        let file = dir.join("f.bin");
        fs::write(&file, vec![1u8; MAX_IN_MEMORY as usize]).unwrap();
        // Many keys for the same file: the bytes bound evicts the oldest.
        let mut f = File::open(&file).unwrap();
        let metadata = f.metadata().unwrap();
        let keys = MAX_TOTAL_BYTES / MAX_IN_MEMORY as usize + 10;
        for i in 0..keys {
            use std::io::Seek;
            f.rewind().unwrap();
            assert!(cache.load(&dir.join(format!("k{i}")), &mut f, &metadata, "x").is_some());
        }
        let (entries, bytes) = cache.size();
        assert!(bytes <= MAX_TOTAL_BYTES, "{bytes}");
        assert!(entries < keys, "{entries}");
        let inner = cache.inner.lock().unwrap();
        assert!(!inner.map.contains_key(&dir.join("k0")), "the oldest went first");
        assert!(inner.map.contains_key(&dir.join(format!("k{}", keys - 1))));
        assert_eq!(inner.order.len(), inner.map.len());
        drop(inner);
        fs::remove_dir_all(&dir).unwrap();
    }
}
