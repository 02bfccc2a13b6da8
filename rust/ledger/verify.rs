//! Offline verification of a ledger directory, streaming in bounded memory: it keeps the
//! right edge of the tree (O(log n) hashes), one record and the checkpoints, never the whole
//! log. Without a keyring it checks what an auditor can: framing, checksums, order, the hash
//! chain of previous roots, and signed checkpoints. With the keyring it also authenticates
//! every envelope against its index, time and previous root. With an anchor (a checkpoint
//! kept outside the directory, see anchor.rs) it also proves the log extends the anchor.

use std::path::Path;

use super::anchor::{self, Anchor, AnchorOutcome, ProofCollector};
use super::format::{self, Next};
use super::merkle::{leaf_hash, CompactRange, Hash};
use super::segments::{
    check_checkpoint, list_segments, read_checkpoints, read_meta, SegmentReader,
};
use crate::crypto::{envelope, KeyStatus, Keyring};
use crate::error::{CoreError, CoreResult};

#[derive(Debug, Clone)]
pub struct Report {
    pub entries: u64,
    pub root: Hash,
    pub checkpoints: usize,
    pub segments: usize,
    pub signed: bool,
    pub decrypted: bool,
    /// Entries sealed under keys that were destroyed (crypto-shredded): their bytes still
    /// verify in the tree, their contents are gone.
    pub shredded: u64,
    /// Entries covered by the newest signed checkpoint (0 without one); the rest of
    /// `entries` were appended after it and no signature vouches for them yet.
    pub covered: u64,
    /// Set when an anchor was given and the ledger proved consistent with it.
    pub anchor: Option<AnchorOutcome>,
}

/// Verify the ledger in `dir`. `public_key` overrides the key recorded in ledger.meta (an
/// auditor should pass the key they trust, not the one stored beside the data).
pub fn verify_dir(
    dir: &Path,
    public_key: Option<&[u8]>,
    keyring: Option<&Keyring>,
) -> CoreResult<Report> {
    verify_dir_anchored(dir, public_key, keyring, None)
}

/// `verify_dir`, and then prove the ledger is an append-only extension of `anchor`: its
/// signature is checked first (with `public_key`, else the key in ledger.meta), the
/// consistency proof from the anchor to the newest signed checkpoint is built while
/// streaming and checked at the end.
pub fn verify_dir_anchored(
    dir: &Path,
    public_key: Option<&[u8]>,
    keyring: Option<&Keyring>,
    anchor: Option<&Anchor>,
) -> CoreResult<Report> {
    let mut meta = read_meta(dir)?;
    if let Some(pk) = public_key {
        if pk.len() != 32 {
            return Err(CoreError::InvalidArgument(format!(
                "an Ed25519 public key is 32 bytes, got {}",
                pk.len()
            )));
        }
        if let Some(stored) = meta.public_key {
            if stored != pk {
                return Err(CoreError::Integrity(
                    "ledger.meta records a different public key than the trusted one given; \
                     the ledger was replaced or re-keyed"
                        .into(),
                ));
            }
        }
        let mut k = [0u8; 32];
        k.copy_from_slice(pk);
        meta.public_key = Some(k);
    }
    let mut checkpoints = read_checkpoints(dir)?;
    checkpoints.sort_by_key(|c| c.size);
    let newest = checkpoints.last().cloned();
    let mut collector = None;
    if let Some(a) = anchor {
        let pk = meta.public_key.ok_or_else(|| {
            CoreError::InvalidArgument(
                "checking an anchor needs the ledger's public key: this ledger records none, \
                 pass the trusted one"
                    .into(),
            )
        })?;
        anchor::check_signature(a, &meta.ledger_id, &pk)?;
        if let Some(n) = &newest {
            if a.checkpoint.size <= n.size {
                collector = Some(ProofCollector::new(a.checkpoint.size, n.size));
            }
        }
    }
    let mut next_cp = 0;
    let names = list_segments(dir)?;
    if names.is_empty() {
        return Err(CoreError::Integrity(format!(
            "entry 0: {} holds no segment files",
            dir.display()
        )));
    }
    let mut tree = CompactRange::default();
    let mut shredded = 0u64;
    let check_cps = |tree: &CompactRange, next_cp: &mut usize| -> CoreResult<()> {
        while *next_cp < checkpoints.len() && checkpoints[*next_cp].size == tree.size() {
            let cp = &checkpoints[*next_cp];
            check_checkpoint(*next_cp, cp, &meta, tree.size(), |_| Ok(tree.root()))?;
            *next_cp += 1;
        }
        Ok(())
    };
    check_cps(&tree, &mut next_cp)?;
    for name in &names {
        let mut seg = SegmentReader::open(dir, name, &meta, tree.size())?;
        loop {
            let index = tree.size();
            let (_, next) = seg.next_record()?;
            let body = match next {
                Next::End => break,
                Next::Record(b) => b,
                Next::Incomplete => {
                    return Err(CoreError::Integrity(format!(
                        "entry {index}: {name} ends inside a record (truncated, or a torn write \
                         that opening the ledger for writing would cut off)"
                    )))
                }
                Next::Corrupt(why) => {
                    return Err(CoreError::Integrity(format!(
                        "entry {index}: the record in {name} is damaged: {why}"
                    )))
                }
            };
            let b = format::parse_body(&body).ok_or_else(|| {
                CoreError::Integrity(format!("entry {index}: malformed body in {name}"))
            })?;
            if b.index != index {
                return Err(CoreError::Integrity(format!(
                    "entry {index}: the record in {name} says it is entry {}; entries were \
                     reordered, replayed or removed",
                    b.index
                )));
            }
            if b.prev_root != tree.root() {
                return Err(CoreError::Integrity(format!(
                    "entry {index}: its previous-root field does not match the entries before \
                     it; the history was rewritten"
                )));
            }
            if let Some(kr) = keyring {
                let key_id = envelope::parse_header(b.envelope)
                    .map_err(|e| CoreError::Integrity(format!("entry {index}: {e}")))?
                    .key_id;
                if kr.status(key_id)? == Some(KeyStatus::Destroyed) {
                    // Crypto-shredded on purpose: unreadable by design, still hashed above.
                    shredded += 1;
                } else {
                    let aad = format::entry_aad(&meta.ledger_id, &body);
                    kr.decrypt(b.envelope, &aad).map_err(|e| {
                        CoreError::Integrity(format!(
                            "entry {index}: its envelope does not open: {e}"
                        ))
                    })?;
                }
            }
            let leaf = leaf_hash(&body);
            if let Some(c) = collector.as_mut() {
                c.push(&leaf);
            }
            tree.push(leaf);
            check_cps(&tree, &mut next_cp)?;
        }
    }
    if next_cp < checkpoints.len() {
        let cp = &checkpoints[next_cp];
        return Err(CoreError::Integrity(format!(
            "entry {}: checkpoint {next_cp} covers {} entries but the ledger holds {}; entries \
             were removed",
            tree.size(),
            cp.size,
            tree.size()
        )));
    }
    let outcome = match anchor {
        Some(a) => Some(anchor::check_extends(
            a,
            tree.size(),
            newest.as_ref(),
            collector.and_then(ProofCollector::finish),
        )?),
        None => None,
    };
    Ok(Report {
        covered: newest.as_ref().map_or(0, |c| c.size),
        anchor: outcome,
        entries: tree.size(),
        root: tree.root(),
        checkpoints: checkpoints.len(),
        segments: names.len(),
        signed: meta.public_key.is_some(),
        decrypted: keyring.is_some(),
        shredded,
    })
}
