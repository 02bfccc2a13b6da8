//! `VerifyReport` and `AnchorCheck`: what the streaming auditor found, as frozen objects that
//! cross into Python whole (their docs live in `_core.pyi`; `system0.security.audit`
//! re-exports them under the same names).

use pyo3::prelude::*;

use super::anchor::AnchorOutcome;
use super::verify::Report;

/// The ledger proved an append-only extension of an anchor (a kept checkpoint).
#[pyclass(module = "system0._core", name = "AnchorCheck", frozen, get_all)]
#[derive(Clone)]
pub struct PyAnchorCheck {
    size: u64,
    checkpoint_size: u64,
    proof: Vec<Vec<u8>>,
}

#[pyclass(module = "system0._core", name = "VerifyReport", frozen, get_all)]
pub struct PyVerifyReport {
    entries: u64,
    root: Vec<u8>,
    checkpoints: usize,
    segments: usize,
    signed: bool,
    decrypted: bool,
    shredded: u64,
    covered: u64,
    anchor: Option<PyAnchorCheck>,
}

impl From<AnchorOutcome> for PyAnchorCheck {
    fn from(a: AnchorOutcome) -> Self {
        PyAnchorCheck {
            size: a.size,
            checkpoint_size: a.checkpoint_size,
            proof: a.proof.iter().map(|h| h.to_vec()).collect(),
        }
    }
}

impl From<Report> for PyVerifyReport {
    fn from(r: Report) -> Self {
        PyVerifyReport {
            entries: r.entries,
            root: r.root.to_vec(),
            checkpoints: r.checkpoints,
            segments: r.segments,
            signed: r.signed,
            decrypted: r.decrypted,
            shredded: r.shredded,
            covered: r.covered,
            anchor: r.anchor.map(PyAnchorCheck::from),
        }
    }
}

#[pymethods]
impl PyVerifyReport {
    /// Entries appended after the newest signed checkpoint.
    #[getter]
    fn uncovered(&self) -> u64 {
        self.entries - self.covered
    }

    fn __repr__(&self) -> String {
        format!(
            "VerifyReport(entries={}, checkpoints={}, segments={}, signed={}, decrypted={}, \
             shredded={}, covered={}, anchor={})",
            self.entries,
            self.checkpoints,
            self.segments,
            self.signed,
            self.decrypted,
            self.shredded,
            self.covered,
            if self.anchor.is_some() {
                "checked"
            } else {
                "None"
            }
        )
    }
}

#[pymethods]
impl PyAnchorCheck {
    fn __repr__(&self) -> String {
        format!(
            "AnchorCheck(size={}, checkpoint_size={}, proof=<{} hashes>)",
            self.size,
            self.checkpoint_size,
            self.proof.len()
        )
    }
}
