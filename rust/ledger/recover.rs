//! Reading a ledger directory back: segment listing, the metadata and checkpoint files, and
//! the scan that rebuilds the tree on open and cuts a torn tail (see store.rs for the policy).

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::format::{self, buffer_size, Checkpoint, Meta, Next, BODY_FIXED, SEG_HEADER_LEN};
use super::merkle::{leaf_hash, Hash, Tree};
use super::store::{io_err, Recovery};
use crate::error::{CoreError, CoreResult};

/// What a scan of the directory found: the tree and where every entry lives.
pub struct Scanned {
    pub tree: Tree,
    pub last_time: u64,
    /// (first index, file name) of every segment, in order.
    pub segments: Vec<(u64, String)>,
    pub offsets: Vec<u64>,
    /// Bytes used in the last segment.
    pub seg_fill: u64,
    pub checkpoints: Vec<Checkpoint>,
    pub recovery: Recovery,
    pub last_segment: PathBuf,
}

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
    let b = fs::read(&p).map_err(|e| {
        CoreError::Integrity(format!(
            "{} is not a ledger (ledger.meta unreadable: {e})",
            dir.display()
        ))
    })?;
    Meta::decode(&b)
}

pub fn read_checkpoints(dir: &Path) -> CoreResult<Vec<Checkpoint>> {
    match fs::read(dir.join("checkpoints.s0c")) {
        Ok(b) => format::parse_checkpoints(&b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err("read", &dir.join("checkpoints.s0c"), e)),
    }
}

/// Rebuild the tree from disk, repairing a torn tail of the last segment.
pub fn scan(dir: &Path, meta: &Meta, checkpoints: Vec<Checkpoint>) -> CoreResult<Scanned> {
    let names = list_segments(dir)?;
    if names.is_empty() {
        return Err(CoreError::Integrity(format!(
            "{} has ledger.meta but no segment files; segments were deleted",
            dir.display()
        )));
    }
    let mut tree = Tree::new();
    let mut offsets = Vec::new();
    let mut segments = Vec::new();
    let mut recovery = Recovery::default();
    let mut last_time = 0;
    let mut seg_fill = 0;
    let protected = checkpoints.iter().map(|c| c.size).max().unwrap_or(0);
    for (si, name) in names.iter().enumerate() {
        let is_last = si + 1 == names.len();
        let p = dir.join(name);
        let mut f = File::open(&p).map_err(|e| io_err("open", &p, e))?;
        let mut header = [0u8; SEG_HEADER_LEN];
        f.read_exact(&mut header).map_err(|_| {
            CoreError::Integrity(format!("segment {name} is shorter than its header"))
        })?;
        let first = format::check_segment_header(&header, &meta.ledger_id, name)?;
        if first != tree.size() {
            return Err(CoreError::Integrity(format!(
                "entry {}: segment {name} starts at entry {first}; entries were removed or \
                 segments reordered",
                tree.size()
            )));
        }
        segments.push((first, name.clone()));
        let mut r = BufReader::with_capacity(buffer_size(&f), f);
        let mut pos = SEG_HEADER_LEN as u64;
        loop {
            let index = tree.size();
            let mut used = 0;
            let next = format::read_record(&mut r, &mut used).map_err(|e| io_err("read", &p, e))?;
            let torn = matches!(next, Next::Incomplete | Next::Corrupt(_));
            let problem = match next {
                Next::End => break,
                Next::Record(body) => match format::parse_body(&body) {
                    Some(b) if b.index == index && b.prev_root == tree.root_at(index)? => {
                        last_time = b.time_unix_ns;
                        tree.push(leaf_hash(&body));
                        offsets.push(pos);
                        pos += used;
                        continue;
                    }
                    Some(b) if b.index != index => {
                        "it carries the wrong index (reordered, replayed or removed entries)"
                    }
                    Some(_) => "its previous root does not match the entries before it",
                    None => "its body is malformed",
                },
                Next::Incomplete => "the file ends inside it",
                Next::Corrupt(why) => why,
            };
            let resyncs = torn && valid_record_follows(&p, pos, index)?;
            if !is_last || !torn || resyncs || index < protected {
                return Err(CoreError::Integrity(format!(
                    "entry {index}: the record at byte {pos} of {name} is bad: {problem}{}; run \
                     `system0 audit verify` and restore the ledger from a replica",
                    if index < protected {
                        " (a signed checkpoint covers it, so it is not a torn write)"
                    } else {
                        ""
                    }
                )));
            }
            let total = fs::metadata(&p).map_err(|e| io_err("stat", &p, e))?.len();
            let f = OpenOptions::new()
                .write(true)
                .open(&p)
                .map_err(|e| io_err("open", &p, e))?;
            f.set_len(pos)
                .and_then(|_| f.sync_all())
                .map_err(|e| io_err("truncate", &p, e))?;
            recovery = Recovery {
                truncated_bytes: total - pos,
                truncated_at_index: Some(index),
                segment: Some(name.clone()),
            };
            break;
        }
        seg_fill = pos;
    }
    let size = tree.size();
    for (i, cp) in checkpoints.iter().enumerate() {
        check_checkpoint(i, cp, meta, size, |s| tree.root_at(s))?;
    }
    let last = dir.join(&segments.last().expect("at least one segment").1);
    Ok(Scanned {
        tree,
        last_time,
        segments,
        offsets,
        seg_fill,
        checkpoints,
        recovery,
        last_segment: last,
    })
}

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

/// Is there a whole, valid record for an index after `index` somewhere past `pos`? Then the
/// bad record is damage in the middle of the log, not a torn tail.
fn valid_record_follows(p: &Path, pos: u64, index: u64) -> CoreResult<bool> {
    let mut f = File::open(p).map_err(|e| io_err("open", p, e))?;
    f.seek(SeekFrom::Start(pos))
        .map_err(|e| io_err("seek", p, e))?;
    let mut rest = Vec::new();
    f.read_to_end(&mut rest).map_err(|e| io_err("read", p, e))?;
    for start in 1..rest.len().saturating_sub(4 + BODY_FIXED + 4) {
        let n = u32::from_le_bytes([
            rest[start],
            rest[start + 1],
            rest[start + 2],
            rest[start + 3],
        ]) as usize;
        let end = start + 4 + n + 4;
        if n < BODY_FIXED || end > rest.len() || rest[start + 4] != format::KIND_ENTRY {
            continue;
        }
        let mut idx = [0u8; 8];
        idx.copy_from_slice(&rest[start + 5..start + 13]);
        if u64::from_le_bytes(idx) <= index {
            continue;
        }
        let stored =
            u32::from_le_bytes([rest[end - 4], rest[end - 3], rest[end - 2], rest[end - 1]]);
        if format::crc(&[&rest[start..end - 4]]) == stored {
            return Ok(true);
        }
    }
    Ok(false)
}
