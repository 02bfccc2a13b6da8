//! The ledger on disk: segment files, group commit, torn-tail recovery, checkpoints.
//!
//! Writers. `append_batch` takes the state lock, seals each entry (its envelope binds the
//! ledger id, index, time and previous root), frames it, hashes it into the tree and queues
//! the bytes; then it commits. Commit is group commit: one thread at a time holds the I/O
//! lock, takes everything queued by every thread, writes it with one `write` and, under the
//! `always` policy, one `fdatasync`; threads that queued meanwhile find their entries already
//! durable and return at once.
//!
//! Fsync policy. Under every policy an entry is handed to the kernel (`write`) before
//! `append` returns, so an acknowledged entry survives `kill -9` of the process. Power loss:
//! `always` (default) syncs before acknowledging, so nothing acknowledged is lost; `interval`
//! syncs when an append finds the last sync older than the interval (and on `sync`/`close`
//! and every checkpoint), so at most about one interval of entries is at risk; `never` leaves
//! it to the kernel. A segment is synced before the next one is started.
//!
//! Recovery. Opening scans every segment. A last segment that ends inside a record, or whose
//! last record fails its checksum with no valid record after it, had a torn write: it is cut
//! back to the last whole record and the cut is reported. Damage anywhere else, or a cut that
//! would drop entries covered by a signed checkpoint, is an `IntegrityError`, never a repair.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::format::{self, Checkpoint, Meta, BODY_FIXED, SEG_HEADER_LEN};
use super::merkle::{leaf_hash, Hash, Tree};
use super::recover::{scan, Recovery};
use super::segments::{io_err, read_checkpoints, read_meta};
use crate::crypto::envelope::OVERHEAD;
use crate::crypto::nonce::os_random;
use crate::crypto::{Keyring, SigningKey};
use crate::error::{CoreError, CoreResult};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fsync {
    Always,
    Interval(Duration),
    Never,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub fsync: Fsync,
    pub segment_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            fsync: Fsync::Always,
            segment_bytes: 256 << 20,
        }
    }
}

struct Chunk {
    new_segment: Option<u64>,
    bytes: Vec<u8>,
}

struct Inner {
    tree: Tree,
    root: Hash,
    last_time: u64,
    /// (first index, file name) of every segment, in order.
    segments: Vec<(u64, String)>,
    /// Offset of each entry's record within its segment.
    offsets: Vec<u64>,
    seg_fill: u64,
    pending: Vec<Chunk>,
    checkpoints: Vec<Checkpoint>,
    failed: Option<String>,
}

struct Io {
    file: File,
}

/// What the group commit has achieved; guarded apart from the file so waiters can check it
/// while a leader is inside `write` or `fdatasync`.
struct Progress {
    written: u64,
    synced: u64,
    last_sync: Instant,
    busy: bool,
}

pub struct Ledger {
    dir: PathBuf,
    meta: Meta,
    opts: Options,
    keyring: Option<Arc<Keyring>>,
    signer: Option<Arc<SigningKey>>,
    inner: Mutex<Inner>,
    io: Mutex<Io>,
    progress: Mutex<Progress>,
    settled: Condvar,
    pub recovery: Recovery,
}

fn lock<T>(m: &Mutex<T>) -> CoreResult<MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| CoreError::Internal("ledger lock poisoned by a panic".into()))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Ledger {
    pub fn open(
        dir: &Path,
        keyring: Option<Arc<Keyring>>,
        signer: Option<Arc<SigningKey>>,
        opts: Options,
    ) -> CoreResult<Ledger> {
        if opts.segment_bytes < 4096 {
            return Err(CoreError::InvalidArgument(format!(
                "segment_bytes must be at least 4096, got {}",
                opts.segment_bytes
            )));
        }
        fs::create_dir_all(dir).map_err(|e| io_err("create", dir, e))?;
        let meta_path = dir.join("ledger.meta");
        let meta = if meta_path.exists() {
            read_meta(dir)?
        } else {
            let mut ledger_id = [0u8; 16];
            os_random(&mut ledger_id)?;
            let mut pk = None;
            if let Some(s) = &signer {
                let mut k = [0u8; 32];
                k.copy_from_slice(s.public_key());
                pk = Some(k);
            }
            let meta = Meta {
                ledger_id,
                created_unix_ns: crate::clock::to_unix_ns(crate::clock::now_ns()),
                public_key: pk,
            };
            let seg = dir.join(format::segment_name(0));
            let mut f = File::create(&seg).map_err(|e| io_err("create", &seg, e))?;
            f.write_all(&format::segment_header(&ledger_id, 0))
                .and_then(|_| f.sync_all())
                .map_err(|e| io_err("write", &seg, e))?;
            crate::crypto::keyfile::atomic_write(&meta_path, &meta.encode())?;
            sync_dir(dir);
            meta
        };
        if let (Some(s), Some(pk)) = (&signer, &meta.public_key) {
            if s.public_key() != pk {
                return Err(CoreError::Crypto(
                    "the signing key given is not the one this ledger records in ledger.meta; \
                     open it with its own identity key"
                        .into(),
                ));
            }
        }
        if signer.is_some() && meta.public_key.is_none() {
            return Err(CoreError::Crypto(
                "this ledger was created without a signing key, so its checkpoints cannot be \
                 signed by one now; open it without signing_key or start a new ledger"
                    .into(),
            ));
        }
        let checkpoints = read_checkpoints(dir)?;
        let found = scan(dir, &meta, checkpoints)?;
        let size = found.tree.size();
        let last_path = found.last_segment.clone();
        let recovery = found.recovery.clone();
        let inner = Inner {
            root: found.tree.root_at(size)?,
            tree: found.tree,
            last_time: found.last_time,
            segments: found.segments,
            offsets: found.offsets,
            seg_fill: found.seg_fill,
            pending: Vec::new(),
            checkpoints: found.checkpoints,
            failed: None,
        };
        let file = OpenOptions::new()
            .append(true)
            .open(&last_path)
            .map_err(|e| io_err("open for append", &last_path, e))?;
        Ok(Ledger {
            dir: dir.to_path_buf(),
            meta,
            opts,
            keyring,
            signer,
            inner: Mutex::new(inner),
            io: Mutex::new(Io { file }),
            progress: Mutex::new(Progress {
                written: size,
                synced: size,
                last_sync: Instant::now(),
                busy: false,
            }),
            settled: Condvar::new(),
            recovery,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn ledger_id(&self) -> [u8; 16] {
        self.meta.ledger_id
    }
    pub fn public_key(&self) -> Option<[u8; 32]> {
        self.meta.public_key
    }

    pub fn size(&self) -> CoreResult<u64> {
        Ok(lock(&self.inner)?.tree.size())
    }

    pub fn root(&self) -> CoreResult<(u64, Hash)> {
        let inner = lock(&self.inner)?;
        Ok((inner.tree.size(), inner.root))
    }

    /// Append entries in order; returns the index of the first. Durable per the fsync policy.
    pub fn append_batch(&self, entries: &[&[u8]]) -> CoreResult<u64> {
        let keyring = self.keyring.as_ref().ok_or_else(|| {
            CoreError::Crypto(
                "this ledger was opened without a keyring, so it can verify but not append; \
                 pass keyring="
                    .into(),
            )
        })?;
        let (first, end) = {
            let mut inner = lock(&self.inner)?;
            if let Some(f) = &inner.failed {
                return Err(CoreError::Integrity(f.clone()));
            }
            let first = inner.tree.size();
            let now = crate::clock::to_unix_ns(crate::clock::now_ns());
            for e in entries {
                if e.len() + OVERHEAD + BODY_FIXED > format::MAX_BODY {
                    return Err(CoreError::InvalidArgument(format!(
                        "an audit entry is limited to {} bytes, got {}",
                        format::MAX_BODY - OVERHEAD - BODY_FIXED,
                        e.len()
                    )));
                }
            }
            for e in entries {
                self.push_one(&mut inner, keyring, e, now)?;
            }
            (first, inner.tree.size())
        };
        self.commit(end, false)?;
        Ok(first)
    }

    fn push_one(
        &self,
        inner: &mut Inner,
        keyring: &Keyring,
        entry: &[u8],
        now: u64,
    ) -> CoreResult<()> {
        let index = inner.tree.size();
        let time = now.max(inner.last_time);
        let body_len = BODY_FIXED + entry.len() + OVERHEAD;
        let rec_len = (body_len + format::RECORD_OVERHEAD) as u64;
        if inner.seg_fill + rec_len > self.opts.segment_bytes
            && inner.seg_fill > SEG_HEADER_LEN as u64
        {
            inner.pending.push(Chunk {
                new_segment: Some(index),
                bytes: Vec::new(),
            });
            inner.segments.push((index, format::segment_name(index)));
            inner.seg_fill = SEG_HEADER_LEN as u64;
        }
        if inner.pending.is_empty() {
            inner.pending.push(Chunk {
                new_segment: None,
                bytes: Vec::with_capacity(rec_len as usize),
            });
        }
        let ledger_id = self.meta.ledger_id;
        let prev_root = inner.root;
        let buf = &mut inner.pending.last_mut().expect("pushed above").bytes;
        let mark = buf.len();
        let range = format::push_record(buf, index, time, &prev_root, body_len, |fixed, env| {
            let aad = format::entry_aad(&ledger_id, fixed);
            keyring.encrypt_into(entry, &aad, env).map(|_| ())
        });
        let range = match range {
            Ok(r) => r,
            Err(e) => {
                buf.truncate(mark);
                return Err(e);
            }
        };
        let leaf = leaf_hash(&buf[range]);
        inner.tree.push(leaf);
        inner.root = inner.tree.root_at(inner.tree.size())?;
        inner.last_time = time;
        let off = inner.seg_fill;
        inner.offsets.push(off);
        inner.seg_fill += rec_len;
        Ok(())
    }

    /// Write (and sync, per policy or when `durable`) everything up to entry count `upto`.
    fn commit(&self, upto: u64, durable: bool) -> CoreResult<()> {
        // Group commit: one leader at a time writes everything queued and syncs it, without
        // holding the progress lock; waiters sleep on the condvar and leave as soon as a
        // leader's write or sync covers their entries, so a sync is never waited for twice.
        let mut g = lock(&self.progress)?;
        loop {
            let sync_due = durable
                || match self.opts.fsync {
                    Fsync::Always => true,
                    Fsync::Interval(d) => g.last_sync.elapsed() >= d,
                    Fsync::Never => false,
                };
            let need_sync = if durable { g.written.max(upto) } else { upto };
            if g.written >= upto && (!sync_due || g.synced >= need_sync) {
                return Ok(());
            }
            if g.busy {
                g = self
                    .settled
                    .wait(g)
                    .map_err(|_| CoreError::Internal("ledger lock poisoned by a panic".into()))?;
                continue;
            }
            g.busy = true;
            let written_before = g.written;
            drop(g);
            let outcome = self.lead(sync_due);
            g = lock(&self.progress)?;
            g.busy = false;
            self.settled.notify_all();
            match outcome {
                Ok(count) => {
                    g.written = count;
                    if sync_due {
                        g.synced = count;
                        g.last_sync = Instant::now();
                    }
                }
                Err(e) => {
                    let msg = format!(
                        "ledger I/O failed in {}: {e}; entries after {written_before} may not \
                         be on disk; reopen the ledger (it recovers to what is on disk) once \
                         the cause is fixed",
                        self.dir.display(),
                    );
                    lock(&self.inner)?.failed = Some(msg.clone());
                    return Err(CoreError::Integrity(msg));
                }
            }
        }
    }

    /// The leader's work: write everything queued so far, sync it if asked; returns the
    /// number of entries now written.
    fn lead(&self, sync: bool) -> std::io::Result<u64> {
        let mut io = self
            .io
            .lock()
            .map_err(|_| std::io::Error::other("ledger file lock poisoned"))?;
        let (chunks, count) = {
            let mut inner = self
                .inner
                .lock()
                .map_err(|_| std::io::Error::other("ledger state lock poisoned"))?;
            (std::mem::take(&mut inner.pending), inner.tree.size())
        };
        self.write_chunks(&mut io, chunks)?;
        if sync {
            io.file.sync_data()?;
        }
        Ok(count)
    }

    fn write_chunks(&self, io: &mut Io, chunks: Vec<Chunk>) -> std::io::Result<()> {
        for c in chunks {
            if let Some(first) = c.new_segment {
                io.file.sync_data()?;
                let p = self.dir.join(format::segment_name(first));
                let mut f = OpenOptions::new().create_new(true).append(true).open(&p)?;
                f.write_all(&format::segment_header(&self.meta.ledger_id, first))?;
                f.sync_data()?;
                sync_dir(&self.dir);
                io.file = f;
            }
            if !c.bytes.is_empty() {
                io.file.write_all(&c.bytes)?;
            }
        }
        Ok(())
    }

    /// Make everything appended so far durable.
    pub fn sync(&self) -> CoreResult<()> {
        let n = self.size()?;
        self.commit(n, true)
    }

    /// Sign (size, root, time) of the current tree and record it in checkpoints.s0c.
    pub fn checkpoint(&self) -> CoreResult<Checkpoint> {
        let signer = self.signer.as_ref().ok_or_else(|| {
            CoreError::Crypto(
                "checkpoints need the ledger's identity key; open the ledger with signing_key="
                    .into(),
            )
        })?;
        let (size, root) = self.root()?;
        self.commit(size, true)?;
        let time = crate::clock::to_unix_ns(crate::clock::now_ns());
        let msg = Checkpoint::signed_message(&self.meta.ledger_id, size, &root, time);
        let cp = Checkpoint {
            size,
            root,
            time_unix_ns: time,
            signature: signer.sign(&msg),
        };
        let p = self.dir.join("checkpoints.s0c");
        let mut inner = lock(&self.inner)?;
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(|e| io_err("open", &p, e))?;
        f.write_all(&cp.encode())
            .and_then(|_| f.sync_data())
            .map_err(|e| io_err("write", &p, e))?;
        inner.checkpoints.push(cp.clone());
        Ok(cp)
    }

    pub fn checkpoints(&self) -> CoreResult<Vec<Checkpoint>> {
        Ok(lock(&self.inner)?.checkpoints.clone())
    }

    pub fn root_at(&self, size: u64) -> CoreResult<Hash> {
        lock(&self.inner)?.tree.root_at(size)
    }

    pub fn inclusion_proof(&self, index: u64, size: u64) -> CoreResult<Vec<Hash>> {
        lock(&self.inner)?.tree.inclusion_proof(index, size)
    }

    pub fn consistency_proof(&self, old: u64, size: u64) -> CoreResult<Vec<Hash>> {
        lock(&self.inner)?.tree.consistency_proof(old, size)
    }

    /// The stored body of entry `index` (ciphertext and metadata: the Merkle leaf).
    pub fn raw_entry(&self, index: u64) -> CoreResult<Vec<u8>> {
        self.commit(index + 1, false)?;
        let (name, off) = {
            let inner = lock(&self.inner)?;
            let off = *inner.offsets.get(index as usize).ok_or_else(|| {
                CoreError::InvalidArgument(format!(
                    "entry {index} does not exist; the ledger has {} entries",
                    inner.offsets.len()
                ))
            })?;
            let seg = inner.segments.partition_point(|(f, _)| *f <= index) - 1;
            (inner.segments[seg].1.clone(), off)
        };
        let p = self.dir.join(name);
        let f = File::open(&p).map_err(|e| io_err("open", &p, e))?;
        let mut len = [0u8; 4];
        f.read_exact_at(&mut len, off)
            .map_err(|e| io_err("read", &p, e))?;
        let n = u32::from_le_bytes(len) as usize;
        let mut rec = vec![0u8; n + 4];
        f.read_exact_at(&mut rec, off + 4)
            .map_err(|e| io_err("read", &p, e))?;
        if format::crc(&[&len, &rec[..n]])
            != u32::from_le_bytes([rec[n], rec[n + 1], rec[n + 2], rec[n + 3]])
        {
            return Err(CoreError::Integrity(format!(
                "entry {index}: its record in {} fails its checksum; run verify",
                p.display()
            )));
        }
        rec.truncate(n);
        Ok(rec)
    }

    /// Decrypt entry `index`; returns (time unix ns, plaintext).
    pub fn read(&self, index: u64) -> CoreResult<(u64, Vec<u8>)> {
        let keyring = self.keyring.as_ref().ok_or_else(|| {
            CoreError::Crypto("reading entries needs the keyring; pass keyring=".into())
        })?;
        let body = self.raw_entry(index)?;
        let b = format::parse_body(&body)
            .ok_or_else(|| CoreError::Integrity(format!("entry {index}: malformed body")))?;
        let aad = format::entry_aad(&self.meta.ledger_id, &body);
        let pt = keyring.decrypt(b.envelope, &aad)?;
        Ok((b.time_unix_ns, pt))
    }
}
