//! The scan that rebuilds the tree when a ledger is opened for writing, and cuts a torn tail
//! of the last segment (see store.rs for the policy). It reads segments through the same
//! reader as the auditor (segments.rs) and never writes anything but that cut.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::format::{self, Checkpoint, Meta, Next, BODY_FIXED};
use super::merkle::{leaf_hash, Tree};
use super::segments::{check_checkpoint, io_err, list_segments, SegmentReader};
use crate::error::{CoreError, CoreResult};

/// What opening found and repaired.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    pub truncated_bytes: u64,
    pub truncated_at_index: Option<u64>,
    pub segment: Option<String>,
}

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
        let mut seg = SegmentReader::open(dir, name, meta, tree.size())?;
        let p = seg.path.clone();
        segments.push((tree.size(), name.clone()));
        let mut pos;
        loop {
            let index = tree.size();
            let (at, next) = seg.next_record()?;
            pos = at;
            let torn = matches!(next, Next::Incomplete | Next::Corrupt(_));
            let problem = match next {
                Next::End => break,
                Next::Record(body) => match format::parse_body(&body) {
                    Some(b) if b.index == index && b.prev_root == tree.root_at(index)? => {
                        last_time = b.time_unix_ns;
                        tree.push(leaf_hash(&body));
                        offsets.push(pos);
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
