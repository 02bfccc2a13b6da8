//! Reading a ledger directory: the segment listing, the metadata and checkpoint files, the
//! checkpoint check, and the one segment reader that both the scan on open (recover.rs) and
//! the offline auditor (verify.rs) walk records with.
//!
//! Invariants: a segment's header names this ledger and the index of its first entry, which
//! must equal the number of entries before it (no segment removed or reordered); records are
//! read in file order and each is reported with the byte offset where it starts, so a caller
//! can cut a torn tail back to exactly that offset.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::format::{self, buffer_size, Checkpoint, Meta, Next, SEG_HEADER_LEN};
use super::merkle::Hash;
use crate::error::{CoreError, CoreResult};

/// A failed file operation on the ledger, typed by its kind (see `CoreError::io`).
pub fn io_err(what: &str, path: &Path, e: std::io::Error) -> CoreError {
    CoreError::io(what, path, &e)
}

/// The segment files of `dir`, in order (their names sort by first index).
pub fn list_segments(dir: &Path) -> CoreResult<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map_err(|e| io_err("list", dir, e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("seg-") && n.ends_with(".s0l"))
        .collect();
    names.sort();
    Ok(names)
}

pub fn read_meta(dir: &Path) -> CoreResult<Meta> {
    let p = dir.join("ledger.meta");
    // A directory without ledger.meta is not a ledger (or lost the file that names it);
    // any other failure to read it is the device's, typed by its kind.
    let b = fs::read(&p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => CoreError::Integrity(format!(
            "{} is not a ledger (ledger.meta unreadable: {e})",
            dir.display()
        )),
        _ => io_err("read", &p, e),
    })?;
    Meta::decode(&b)
}

/// The signed checkpoints of `dir`; none when the file does not exist yet.
pub fn read_checkpoints(dir: &Path) -> CoreResult<Vec<Checkpoint>> {
    match fs::read(dir.join("checkpoints.s0c")) {
        Ok(b) => format::parse_checkpoints(&b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err("read", &dir.join("checkpoints.s0c"), e)),
    }
}

/// Checkpoint `i` is signed by the ledger's key (when it records one), covers no more than
/// the `size` entries present, and its root is the root of its first `cp.size` entries.
pub fn check_checkpoint(
    i: usize,
    cp: &Checkpoint,
    meta: &Meta,
    size: u64,
    root_at: impl FnOnce(u64) -> CoreResult<Hash>,
) -> CoreResult<()> {
    if let Some(pk) = &meta.public_key {
        if !cp.verify(&meta.ledger_id, pk) {
            return Err(CoreError::Integrity(format!(
                "checkpoint {i} (size {}) has an invalid signature: it was forged or altered",
                cp.size
            )));
        }
    }
    if cp.size > size {
        return Err(CoreError::Integrity(format!(
            "entry {size}: checkpoint {i} covers {} entries but the ledger holds {size}; \
             entries were removed",
            cp.size
        )));
    }
    if root_at(cp.size)? != cp.root {
        return Err(CoreError::Integrity(format!(
            "checkpoint {i}: the first {} entries no longer hash to the signed root; an entry \
             was rewritten",
            cp.size
        )));
    }
    Ok(())
}

/// One segment file open for reading, its header checked.
pub struct SegmentReader {
    pub name: String,
    pub path: PathBuf,
    reader: BufReader<File>,
    /// Offset of the next record.
    pos: u64,
}

impl SegmentReader {
    /// Open segment `name` of `dir` and check that its header belongs to `meta`'s ledger and
    /// that it starts at entry `expected_first` (the entries read before it).
    pub fn open(
        dir: &Path,
        name: &str,
        meta: &Meta,
        expected_first: u64,
    ) -> CoreResult<SegmentReader> {
        let path = dir.join(name);
        let f = File::open(&path).map_err(|e| io_err("open", &path, e))?;
        let mut reader = BufReader::with_capacity(buffer_size(&f), f);
        let mut header = [0u8; SEG_HEADER_LEN];
        reader.read_exact(&mut header).map_err(|_| {
            CoreError::Integrity(format!(
                "entry {expected_first}: segment {name} is shorter than its header"
            ))
        })?;
        let first = format::check_segment_header(&header, &meta.ledger_id, name)
            .map_err(|e| CoreError::Integrity(format!("entry {expected_first}: {e}")))?;
        if first != expected_first {
            return Err(CoreError::Integrity(format!(
                "entry {expected_first}: segment {name} starts at entry {first}; entries were \
                 removed or segments reordered"
            )));
        }
        Ok(SegmentReader {
            name: name.to_owned(),
            path,
            reader,
            pos: SEG_HEADER_LEN as u64,
        })
    }

    /// The next record and the offset where it starts. After `Next::End` the offset is the
    /// segment's length; after `Incomplete` or `Corrupt` it is where the bad record begins.
    pub fn next_record(&mut self) -> CoreResult<(u64, Next)> {
        let at = self.pos;
        let mut used = 0;
        let next = format::read_record(&mut self.reader, &mut used)
            .map_err(|e| io_err("read", &self.path, e))?;
        if matches!(next, Next::Record(_)) {
            self.pos += used;
        }
        Ok((at, next))
    }
}
