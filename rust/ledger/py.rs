//! Python bindings: `Ledger`, the streaming verifier and the standalone Merkle functions.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::anchor::Anchor;
use super::format::Checkpoint;
use super::merkle::{self, Hash, Tree};
use super::py_report::{PyAnchorCheck, PyVerifyReport};
use super::store::{Fsync, Ledger, Options};
use super::verify;
use crate::crypto::py::{PyKeyring, PySigningKey};
use crate::error::CoreError;
use crate::gil::without_gil;

/// An anchor from Python: `(ledger_id, size, root, time_unix_ns, signature)`.
type AnchorTuple = (Vec<u8>, u64, Vec<u8>, u64, Vec<u8>);
type CheckpointTuple<'py> = (u64, Bound<'py, PyBytes>, u64, Bound<'py, PyBytes>);
type LedgerInfo<'py> = (
    Bound<'py, PyBytes>,
    Option<Bound<'py, PyBytes>>,
    Vec<CheckpointTuple<'py>>,
);

fn hash32(b: &[u8], what: &str) -> PyResult<Hash> {
    b.try_into().map_err(|_| {
        CoreError::InvalidArgument(format!(
            "{what} must be a 32-byte SHA-256 hash, got {} bytes",
            b.len()
        ))
        .into()
    })
}

fn hashes(v: &[Vec<u8>], what: &str) -> PyResult<Vec<Hash>> {
    v.iter().map(|h| hash32(h, what)).collect()
}

fn cp_tuple<'py>(py: Python<'py>, c: &Checkpoint) -> CheckpointTuple<'py> {
    (
        c.size,
        PyBytes::new(py, &c.root),
        c.time_unix_ns,
        PyBytes::new(py, &c.signature),
    )
}

fn list<'py>(py: Python<'py>, v: &[Hash]) -> Vec<Bound<'py, PyBytes>> {
    v.iter().map(|h| PyBytes::new(py, h)).collect()
}

#[pyclass(module = "system0._core", name = "Ledger", frozen)]
pub struct PyLedger {
    inner: Arc<Ledger>,
    keyring: Option<Py<PyKeyring>>,
}

#[pymethods]
impl PyLedger {
    #[new]
    #[pyo3(signature = (path, keyring = None, signing_key = None, fsync = "always", fsync_interval_s = 0.05, segment_bytes = 256 << 20))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        keyring: Option<Py<PyKeyring>>,
        signing_key: Option<PyRef<'_, PySigningKey>>,
        fsync: &str,
        fsync_interval_s: f64,
        segment_bytes: u64,
    ) -> PyResult<Self> {
        let fsync = match fsync {
            "always" => Fsync::Always,
            "never" => Fsync::Never,
            "interval" if fsync_interval_s.is_finite() && fsync_interval_s >= 0.0 => {
                Fsync::Interval(Duration::from_secs_f64(fsync_interval_s))
            }
            other => {
                return Err(CoreError::InvalidArgument(format!(
                    "fsync must be 'always', 'interval' (with a finite fsync_interval_s >= 0) or \
                     'never', got {other:?}"
                ))
                .into())
            }
        };
        let kr = keyring.as_ref().map(|k| k.get().inner.clone());
        let signer = signing_key.map(|s| s.inner.clone());
        let opts = Options {
            fsync,
            segment_bytes,
        };
        let ledger = without_gil(py, || Ledger::open(&path, kr, signer, opts))?;
        Ok(PyLedger {
            inner: Arc::new(ledger),
            keyring,
        })
    }

    /// Append one entry; returns its index once it is durable under the fsync policy.
    fn append(&self, py: Python<'_>, entry: &[u8]) -> PyResult<u64> {
        let l = &self.inner;
        Ok(without_gil(py, || l.append_batch(&[entry]))?)
    }

    /// Append entries in order with one commit; returns the index of the first.
    fn append_batch(&self, py: Python<'_>, entries: Vec<Bound<'_, PyBytes>>) -> PyResult<u64> {
        let slices: Vec<&[u8]> = entries.iter().map(|b| b.as_bytes()).collect();
        let l = &self.inner;
        Ok(without_gil(py, || l.append_batch(&slices))?)
    }

    fn sync(&self, py: Python<'_>) -> PyResult<()> {
        let l = &self.inner;
        Ok(without_gil(py, || l.sync())?)
    }

    fn checkpoint<'py>(&self, py: Python<'py>) -> PyResult<CheckpointTuple<'py>> {
        let l = &self.inner;
        let c = without_gil(py, || l.checkpoint())?;
        Ok(cp_tuple(py, &c))
    }

    fn checkpoints<'py>(&self, py: Python<'py>) -> PyResult<Vec<CheckpointTuple<'py>>> {
        Ok(self
            .inner
            .checkpoints()?
            .iter()
            .map(|c| cp_tuple(py, c))
            .collect())
    }

    #[getter]
    fn size(&self) -> PyResult<u64> {
        Ok(self.inner.size()?)
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.dir().to_path_buf()
    }

    #[getter]
    fn ledger_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.ledger_id())
    }

    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner.public_key().map(|k| PyBytes::new(py, &k))
    }

    /// `(truncated_bytes, first_lost_index, segment)` when opening cut a torn tail, else None.
    #[getter]
    fn recovery(&self) -> Option<(u64, u64, String)> {
        let r = &self.inner.recovery;
        r.truncated_at_index
            .map(|i| (r.truncated_bytes, i, r.segment.clone().unwrap_or_default()))
    }

    fn root_at<'py>(&self, py: Python<'py>, size: u64) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.inner.root_at(size)?))
    }

    fn inclusion_proof<'py>(
        &self,
        py: Python<'py>,
        index: u64,
        size: u64,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        Ok(list(py, &self.inner.inclusion_proof(index, size)?))
    }

    fn consistency_proof<'py>(
        &self,
        py: Python<'py>,
        old_size: u64,
        size: u64,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        Ok(list(py, &self.inner.consistency_proof(old_size, size)?))
    }

    /// The stored leaf of entry `index`: ciphertext plus metadata, as the tree hashes it.
    fn raw_entry<'py>(&self, py: Python<'py>, index: u64) -> PyResult<Bound<'py, PyBytes>> {
        let l = &self.inner;
        let b = without_gil(py, || l.raw_entry(index))?;
        Ok(PyBytes::new(py, &b))
    }

    /// `(time_unix_ns, plaintext)` of entry `index`.
    fn read<'py>(&self, py: Python<'py>, index: u64) -> PyResult<(u64, Bound<'py, PyBytes>)> {
        let l = &self.inner;
        let (t, b) = without_gil(py, || l.read(index))?;
        Ok((t, PyBytes::new(py, &b)))
    }

    /// Stream-verify this ledger's files (after syncing them); decrypts every entry too when
    /// the ledger has a keyring and `deep` is true; proves consistency with `anchor` if given.
    #[pyo3(signature = (public_key = None, deep = true, anchor = None))]
    fn verify(
        &self,
        py: Python<'_>,
        public_key: Option<Vec<u8>>,
        deep: bool,
        anchor: Option<AnchorTuple>,
    ) -> PyResult<PyVerifyReport> {
        self.sync(py)?;
        let kr = if deep {
            self.keyring.as_ref().map(|k| k.get().inner.clone())
        } else {
            None
        };
        let dir = self.inner.dir().to_path_buf();
        run_verify(py, dir, public_key, kr, anchor)
    }
}

fn to_anchor(t: AnchorTuple) -> PyResult<Anchor> {
    let (id, size, root, time_unix_ns, sig) = t;
    let ledger_id: [u8; 16] = id.as_slice().try_into().map_err(|_| {
        CoreError::InvalidArgument(format!(
            "an anchor's ledger id is 16 bytes, got {}",
            id.len()
        ))
    })?;
    let signature: [u8; 64] = sig.as_slice().try_into().map_err(|_| {
        CoreError::InvalidArgument(format!(
            "an anchor's Ed25519 signature is 64 bytes, got {}",
            sig.len()
        ))
    })?;
    Ok(Anchor {
        ledger_id,
        checkpoint: Checkpoint {
            size,
            root: hash32(&root, "the anchor's root")?,
            time_unix_ns,
            signature,
        },
    })
}

fn run_verify(
    py: Python<'_>,
    dir: PathBuf,
    public_key: Option<Vec<u8>>,
    keyring: Option<Arc<crate::crypto::Keyring>>,
    anchor: Option<AnchorTuple>,
) -> PyResult<PyVerifyReport> {
    let anchor = anchor.map(to_anchor).transpose()?;
    let r = without_gil(py, || {
        verify::verify_dir_anchored(
            &dir,
            public_key.as_deref(),
            keyring.as_deref(),
            anchor.as_ref(),
        )
    })?;
    Ok(r.into())
}

/// Verify a ledger directory in bounded memory (see `VerifyReport`), and its consistency with
/// `anchor` when given; raises IntegrityError naming the first bad entry.
#[pyfunction]
#[pyo3(signature = (path, public_key = None, keyring = None, anchor = None))]
fn ledger_verify(
    py: Python<'_>,
    path: PathBuf,
    public_key: Option<Vec<u8>>,
    keyring: Option<PyRef<'_, PyKeyring>>,
    anchor: Option<AnchorTuple>,
) -> PyResult<PyVerifyReport> {
    run_verify(
        py,
        path,
        public_key,
        keyring.map(|k| k.inner.clone()),
        anchor,
    )
}

/// `(ledger_id, public_key or None, checkpoints)` read from a ledger directory.
#[pyfunction]
fn ledger_info<'py>(py: Python<'py>, path: PathBuf) -> PyResult<LedgerInfo<'py>> {
    let meta = super::segments::read_meta(&path)?;
    let cps = super::segments::read_checkpoints(&path)?;
    Ok((
        PyBytes::new(py, &meta.ledger_id),
        meta.public_key.map(|k| PyBytes::new(py, &k)),
        cps.iter().map(|c| cp_tuple(py, c)).collect(),
    ))
}

#[pyfunction]
fn merkle_leaf_hash<'py>(py: Python<'py>, entry: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &merkle::leaf_hash(entry))
}

#[pyfunction]
fn merkle_root<'py>(py: Python<'py>, entries: Vec<Bound<'py, PyBytes>>) -> Bound<'py, PyBytes> {
    let slices: Vec<&[u8]> = entries.iter().map(|b| b.as_bytes()).collect();
    PyBytes::new(py, &merkle::root_of_entries(&slices))
}

fn tree_of(entries: &[Bound<'_, PyBytes>]) -> Tree {
    let mut t = Tree::new();
    for e in entries {
        t.push(merkle::leaf_hash(e.as_bytes()));
    }
    t
}

#[pyfunction]
fn merkle_inclusion_proof<'py>(
    py: Python<'py>,
    entries: Vec<Bound<'py, PyBytes>>,
    index: u64,
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let t = tree_of(&entries);
    Ok(list(py, &t.inclusion_proof(index, t.size())?))
}

#[pyfunction]
fn merkle_consistency_proof<'py>(
    py: Python<'py>,
    entries: Vec<Bound<'py, PyBytes>>,
    old_size: u64,
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let t = tree_of(&entries);
    Ok(list(py, &t.consistency_proof(old_size, t.size())?))
}

#[pyfunction]
fn merkle_verify_inclusion(
    leaf_hash: &[u8],
    index: u64,
    tree_size: u64,
    proof: Vec<Vec<u8>>,
    root: &[u8],
) -> PyResult<bool> {
    Ok(merkle::verify_inclusion(
        &hash32(leaf_hash, "leaf_hash")?,
        index,
        tree_size,
        &hashes(&proof, "each proof element")?,
        &hash32(root, "root")?,
    ))
}

#[pyfunction]
fn merkle_verify_consistency(
    old_size: u64,
    size: u64,
    old_root: &[u8],
    root: &[u8],
    proof: Vec<Vec<u8>>,
) -> PyResult<bool> {
    Ok(merkle::verify_consistency(
        old_size,
        size,
        &hash32(old_root, "old_root")?,
        &hash32(root, "root")?,
        &hashes(&proof, "each proof element")?,
    ))
}

/// True when `signature` is the ledger's Ed25519 signature over (size, root, time).
#[pyfunction]
fn checkpoint_verify(
    ledger_id: &[u8],
    public_key: &[u8],
    size: u64,
    root: &[u8],
    time_unix_ns: u64,
    signature: &[u8],
) -> PyResult<bool> {
    let id: [u8; 16] = ledger_id.try_into().map_err(|_| {
        CoreError::InvalidArgument(format!("a ledger id is 16 bytes, got {}", ledger_id.len()))
    })?;
    let root = hash32(root, "root")?;
    let msg = Checkpoint::signed_message(&id, size, &root, time_unix_ns);
    Ok(crate::crypto::sign::verify(public_key, &msg, signature))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyLedger>()?;
    m.add_class::<PyVerifyReport>()?;
    m.add_class::<PyAnchorCheck>()?;
    m.add_function(wrap_pyfunction!(ledger_verify, m)?)?;
    m.add_function(wrap_pyfunction!(ledger_info, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_leaf_hash, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_root, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_inclusion_proof, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_consistency_proof, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_verify_inclusion, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_verify_consistency, m)?)?;
    m.add_function(wrap_pyfunction!(checkpoint_verify, m)?)?;
    Ok(())
}
