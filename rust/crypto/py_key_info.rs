//! `KeyInfo`: the public facts about one key of a keyring (never its material), a frozen
//! object that crosses into Python whole (its docs live in `_core.pyi`).

use pyo3::prelude::*;

use super::keyring::KeyInfo;

#[pyclass(module = "system0._core", name = "KeyInfo", frozen, get_all)]
pub struct PyKeyInfo {
    key_id: u32,
    status: &'static str,
    primary: bool,
    created_unix_ns: u64,
    messages: u64,
}

impl From<KeyInfo> for PyKeyInfo {
    fn from(k: KeyInfo) -> Self {
        PyKeyInfo {
            key_id: k.id,
            status: k.status.name(),
            primary: k.primary,
            created_unix_ns: k.created_unix_ns,
            messages: k.messages,
        }
    }
}

#[pymethods]
impl PyKeyInfo {
    fn __repr__(&self) -> String {
        format!(
            "KeyInfo(key_id={}, status={:?}, primary={}, created_unix_ns={}, messages={})",
            self.key_id,
            self.status,
            if self.primary { "True" } else { "False" },
            self.created_unix_ns,
            self.messages
        )
    }
}
