//! Anchors: a signed checkpoint that an auditor kept outside the ledger directory.
//!
//! Everything in the directory can be rolled back together: an attacker who replaces
//! `checkpoints.s0c` with an older copy and cuts the log back to match leaves a ledger that
//! verifies on its own. Whoever kept a later checkpoint catches it: the anchor's signature is
//! checked with the ledger's public key, then the ledger must prove, with an RFC 9162
//! consistency proof from the anchor to its newest signed checkpoint, that its history is an
//! append-only extension of what the anchor saw.
//!
//! The proof is built while the verifier streams the log, in bounded memory. The nodes of
//! `PROOF(m, D[n])` are the hashes of disjoint leaf ranges `D[a:b]` that depend only on `m`
//! and `n`, so they are listed up front and each is hashed by a fresh `CompactRange` fed the
//! leaves of its range: O(log n) ranges of O(log n) hashes each, every leaf hashed once more.

use super::format::Checkpoint;
use super::merkle::{verify_consistency, CompactRange, Hash};
use crate::error::{CoreError, CoreResult};

/// A checkpoint kept by an auditor, with the ledger id it claims to belong to.
#[derive(Clone, Debug)]
pub struct Anchor {
    pub ledger_id: [u8; 16],
    pub checkpoint: Checkpoint,
}

/// What a successful anchor check established.
#[derive(Clone, Debug)]
pub struct AnchorOutcome {
    /// The anchor's tree size.
    pub size: u64,
    /// The newest signed checkpoint the proof reaches.
    pub checkpoint_size: u64,
    /// The consistency proof from the anchor to that checkpoint (RFC 9162 order).
    pub proof: Vec<Hash>,
}

/// Largest power of two strictly smaller than `n` (n >= 2), as in merkle.rs.
fn split(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The leaf ranges `[lo, hi)` whose hashes make up `PROOF(m, D[n])`, in proof order: the
/// same recursion as `Tree::subproof`, on sizes alone.
pub fn proof_ranges(m: u64, n: u64) -> Vec<(u64, u64)> {
    fn sub(m: u64, lo: u64, hi: u64, complete: bool, out: &mut Vec<(u64, u64)>) {
        let n = hi - lo;
        if m == n {
            if !complete {
                out.push((lo, hi));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            sub(m, lo, lo + k, complete, out);
            out.push((lo + k, hi));
        } else {
            sub(m - k, lo + k, hi, false, out);
            out.push((lo, lo + k));
        }
    }
    let mut out = Vec::new();
    if m > 0 && m < n {
        sub(m, 0, n, true, &mut out);
    }
    out
}

/// Builds `PROOF(m, D[n])` from leaves pushed in order (indices 0, 1, 2, ...).
pub struct ProofCollector {
    /// (lo, hi, position in the proof), sorted by `lo`; the ranges are disjoint.
    ranges: Vec<(u64, u64, usize)>,
    hashes: Vec<Option<Hash>>,
    next: usize,
    current: CompactRange,
    seen: u64,
}

impl ProofCollector {
    pub fn new(m: u64, n: u64) -> Self {
        let mut ranges: Vec<(u64, u64, usize)> = proof_ranges(m, n)
            .into_iter()
            .enumerate()
            .map(|(i, (lo, hi))| (lo, hi, i))
            .collect();
        let hashes = vec![None; ranges.len()];
        ranges.sort_by_key(|r| r.0);
        ProofCollector {
            ranges,
            hashes,
            next: 0,
            current: CompactRange::default(),
            seen: 0,
        }
    }

    pub fn push(&mut self, leaf: &Hash) {
        let index = self.seen;
        self.seen += 1;
        let Some(&(lo, hi, slot)) = self.ranges.get(self.next) else {
            return;
        };
        if index < lo {
            return;
        }
        self.current.push(*leaf);
        if index + 1 == hi {
            self.hashes[slot] = Some(self.current.root());
            self.current = CompactRange::default();
            self.next += 1;
        }
    }

    /// The proof, once every leaf of every range was pushed; None if the log ended early.
    pub fn finish(self) -> Option<Vec<Hash>> {
        self.hashes.into_iter().collect()
    }
}

/// The anchor's signature, checked with the key the verifier trusts.
pub fn check_signature(anchor: &Anchor, ledger_id: &[u8; 16], public_key: &[u8]) -> CoreResult<()> {
    if &anchor.ledger_id != ledger_id {
        return Err(CoreError::Integrity(format!(
            "the anchor belongs to ledger {}, not to this ledger ({}); it was kept for another \
             ledger, or this directory was replaced",
            hex(&anchor.ledger_id),
            hex(ledger_id)
        )));
    }
    if !anchor.checkpoint.verify(ledger_id, public_key) {
        return Err(CoreError::Integrity(format!(
            "the anchor (size {}) does not carry a valid signature of this ledger's key: it was \
             forged or altered, or the ledger was re-keyed",
            anchor.checkpoint.size
        )));
    }
    Ok(())
}

/// After the stream: does the ledger (`entries`, newest signed checkpoint `newest`) extend
/// the anchor? `proof` is what the collector built for (anchor size, newest size).
pub fn check_extends(
    anchor: &Anchor,
    entries: u64,
    newest: Option<&Checkpoint>,
    proof: Option<Vec<Hash>>,
) -> CoreResult<AnchorOutcome> {
    let a = &anchor.checkpoint;
    if a.size > entries {
        return Err(CoreError::Integrity(format!(
            "the anchor covers {} entries but the ledger holds {entries}: the log's tail was \
             dropped (and its checkpoint file rolled back to match)",
            a.size
        )));
    }
    let newest = newest.ok_or_else(|| {
        CoreError::Integrity(format!(
            "the anchor covers {} entries but the ledger has no signed checkpoint: its \
             checkpoint file was removed",
            a.size
        ))
    })?;
    if a.size > newest.size {
        return Err(CoreError::Integrity(format!(
            "the anchor covers {} entries but the ledger's newest signed checkpoint covers only \
             {}: its checkpoint file was replaced by an older copy (or cut)",
            a.size, newest.size
        )));
    }
    let proof = proof.ok_or_else(|| {
        CoreError::Internal("the consistency proof was not complete after the stream".into())
    })?;
    if !verify_consistency(a.size, newest.size, &a.root, &newest.root, &proof) {
        return Err(CoreError::Integrity(format!(
            "the consistency proof from the anchor (size {}) to the newest signed checkpoint \
             (size {}) fails: the ledger's first {} entries are not the ones the anchor signed; \
             the history was rewritten or forked",
            a.size, newest.size, a.size
        )));
    }
    Ok(AnchorOutcome {
        size: a.size,
        checkpoint_size: newest.size,
        proof,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::merkle::{leaf_hash, Tree};

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    #[test]
    fn streamed_proofs_equal_the_tree_proofs() {
        let all = leaves(70);
        let mut tree = Tree::new();
        for l in &all {
            tree.push(*l);
        }
        for n in 0..=70u64 {
            for m in 0..=n {
                let mut c = ProofCollector::new(m, n);
                for l in &all {
                    c.push(l);
                }
                let streamed = c.finish().expect("every range was fed");
                assert_eq!(
                    streamed,
                    tree.consistency_proof(m, n).unwrap(),
                    "m={m} n={n}"
                );
                let (r1, r2) = (tree.root_at(m).unwrap(), tree.root_at(n).unwrap());
                assert!(verify_consistency(m, n, &r1, &r2, &streamed));
            }
        }
    }

    #[test]
    fn a_log_that_ends_early_leaves_the_proof_unfinished() {
        let all = leaves(9);
        let mut c = ProofCollector::new(3, 12);
        for l in &all {
            c.push(l);
        }
        assert!(c.finish().is_none());
    }

    fn cp(size: u64, root: Hash) -> Checkpoint {
        Checkpoint {
            size,
            root,
            time_unix_ns: 1,
            signature: [0; 64],
        }
    }

    #[test]
    fn rollback_and_truncation_are_named() {
        let mut tree = Tree::new();
        for l in leaves(10) {
            tree.push(l);
        }
        let anchor = Anchor {
            ledger_id: [7; 16],
            checkpoint: cp(8, tree.root_at(8).unwrap()),
        };
        let older = cp(5, tree.root_at(5).unwrap());
        let e = check_extends(&anchor, 5, Some(&older), None).unwrap_err();
        assert!(e.to_string().contains("tail was dropped"), "{e}");
        let e = check_extends(&anchor, 10, Some(&older), None).unwrap_err();
        assert!(e.to_string().contains("older copy"), "{e}");
        let e = check_extends(&anchor, 10, None, None).unwrap_err();
        assert!(e.to_string().contains("no signed checkpoint"), "{e}");
        let newest = cp(10, tree.root_at(10).unwrap());
        let proof = tree.consistency_proof(8, 10).unwrap();
        let ok = check_extends(&anchor, 10, Some(&newest), Some(proof.clone())).unwrap();
        assert_eq!((ok.size, ok.checkpoint_size), (8, 10));
        let mut forked = anchor.clone();
        forked.checkpoint.root = tree.root_at(7).unwrap();
        let e = check_extends(&forked, 10, Some(&newest), Some(proof)).unwrap_err();
        assert!(e.to_string().contains("consistency proof"), "{e}");
    }
}
