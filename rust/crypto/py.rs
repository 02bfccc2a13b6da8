//! Python bindings: `Keyring`, `SigningKey`, `ed25519_verify`.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use zeroize::Zeroizing;

use super::envelope::{self, OVERHEAD};
use super::keyring::{Keyring, MAX_MESSAGES_PER_KEY};
use super::py_key_info::PyKeyInfo;
use super::sign::{self, SigningKey};
use crate::error::CoreError;
use crate::gil::without_gil;

/// `(id, status, primary, created_unix_ns, messages)`.
/// Payloads above this size are sealed and opened with the GIL released.
const GIL_RELEASE_BYTES: usize = 64 * 1024;

/// Copy a 32-byte secret out of any buffer (bytes, bytearray, memoryview) into wiped memory.
fn secret32(py: Python<'_>, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Zeroizing<[u8; 32]>> {
    let buf = PyBuffer::<u8>::get(obj)?;
    if buf.item_count() != 32 {
        return Err(CoreError::InvalidArgument(format!(
            "{what} must be 32 bytes, got {}",
            buf.item_count()
        ))
        .into());
    }
    let mut out = Zeroizing::new([0u8; 32]);
    buf.copy_to_slice(py, &mut out[..])?;
    Ok(out)
}

/// A new `bytes` of `before + src.len() + after` bytes holding `src` at `before` (zeros
/// around it), then finished in place by `fill`. Unlike `PyBytes::new_with`, the payload is
/// written once (copied) rather than zeroed and then copied: on a 1 MiB envelope that is a
/// full pass over memory saved in each direction. If `fill` fails the object is dropped, so
/// no partially written bytes ever reach Python.
fn bytes_around<'py>(
    py: Python<'py>,
    before: usize,
    src: &[u8],
    after: usize,
    fill: impl FnOnce(&mut [u8]) -> PyResult<()>,
) -> PyResult<Bound<'py, PyBytes>> {
    let len = before + src.len() + after;
    let size = pyo3::ffi::Py_ssize_t::try_from(len)
        .map_err(|_| CoreError::InvalidArgument(format!("{len} bytes is too large")))?;
    // SAFETY: PyBytes_FromStringAndSize(NULL, n) returns a new, unshared bytes object with an
    // uninitialised buffer of n bytes; every byte is written below before a slice over the
    // buffer is formed, and the object is returned only after `fill` succeeded.
    unsafe {
        let ptr = pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), size);
        let obj = Bound::from_owned_ptr_or_err(py, ptr)?.cast_into::<PyBytes>()?;
        let buf = pyo3::ffi::PyBytes_AsString(ptr).cast::<u8>();
        std::ptr::write_bytes(buf, 0, before);
        std::ptr::copy_nonoverlapping(src.as_ptr(), buf.add(before), src.len());
        std::ptr::write_bytes(buf.add(before + src.len()), 0, after);
        fill(std::slice::from_raw_parts_mut(buf, len))?;
        Ok(obj)
    }
}

#[pyclass(module = "system0._core", name = "Keyring", frozen, subclass)]
pub struct PyKeyring {
    pub inner: Arc<Keyring>,
}

#[pymethods]
impl PyKeyring {
    #[new]
    #[pyo3(signature = (message_limit = MAX_MESSAGES_PER_KEY, rotate_at = None, auto_rotate = true))]
    fn new(message_limit: u64, rotate_at: Option<u64>, auto_rotate: bool) -> PyResult<Self> {
        Ok(PyKeyring {
            inner: Arc::new(Keyring::new(message_limit, rotate_at, auto_rotate)?),
        })
    }

    #[pyo3(signature = (material = None))]
    fn add(&self, py: Python<'_>, material: Option<&Bound<'_, PyAny>>) -> PyResult<u32> {
        match material {
            Some(m) => {
                let key = secret32(py, m, "key material")?;
                Ok(self.inner.add(Some(&key[..]))?)
            }
            None => Ok(self.inner.add(None)?),
        }
    }

    fn rotate(&self) -> PyResult<u32> {
        Ok(self.inner.rotate()?)
    }
    fn promote(&self, key_id: u32) -> PyResult<()> {
        Ok(self.inner.promote(key_id)?)
    }
    fn disable(&self, key_id: u32) -> PyResult<()> {
        Ok(self.inner.disable(key_id)?)
    }
    fn enable(&self, key_id: u32) -> PyResult<()> {
        Ok(self.inner.enable(key_id)?)
    }
    fn destroy(&self, key_id: u32) -> PyResult<()> {
        Ok(self.inner.destroy(key_id)?)
    }

    #[getter]
    fn primary_key_id(&self) -> PyResult<Option<u32>> {
        Ok(self.inner.primary_key_id()?)
    }

    /// One `KeyInfo` per key, in id order; never material.
    fn keys(&self) -> PyResult<Vec<PyKeyInfo>> {
        Ok(self
            .inner
            .keys()?
            .into_iter()
            .map(PyKeyInfo::from)
            .collect())
    }

    /// `(message_limit, rotate_at, auto_rotate)`.
    fn limits(&self) -> PyResult<(u64, u64, bool)> {
        Ok(self.inner.message_limit()?)
    }

    #[getter]
    fn path(&self) -> PyResult<Option<PathBuf>> {
        Ok(self.inner.path()?)
    }

    #[pyo3(signature = (data, aad = b"".as_slice()))]
    fn encrypt<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
        aad: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        let kr = &self.inner;
        bytes_around(py, envelope::HEADER_LEN, data, envelope::TAG_LEN, |out| {
            if data.len() >= GIL_RELEASE_BYTES {
                without_gil(py, || kr.encrypt_prepared(aad, out))?;
            } else {
                kr.encrypt_prepared(aad, out)?;
            }
            Ok(())
        })
    }

    #[pyo3(signature = (envelope, aad = b"".as_slice()))]
    fn decrypt<'py>(
        &self,
        py: Python<'py>,
        envelope: &[u8],
        aad: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        envelope::parse_header(envelope)?;
        let kr = &self.inner;
        let ciphertext = &envelope[envelope::HEADER_LEN..envelope.len() - envelope::TAG_LEN];
        bytes_around(py, 0, ciphertext, 0, |out| {
            if envelope.len() >= GIL_RELEASE_BYTES {
                without_gil(py, || kr.decrypt_prepared(envelope, aad, out))?;
            } else {
                kr.decrypt_prepared(envelope, aad, out)?;
            }
            Ok(())
        })
    }

    /// Seal under `master_key` and bind to `path` (Python's `Keyring.save` supplies the key).
    fn _save(
        &self,
        py: Python<'_>,
        path: PathBuf,
        master_key: &Bound<'_, PyAny>,
        provider_params: &[u8],
    ) -> PyResult<()> {
        let master = secret32(py, master_key, "the master key")?;
        Ok(self.inner.save(&path, &master[..], provider_params)?)
    }

    /// Replace this keyring's keys and settings with the ones stored at `path`.
    fn _load(&self, py: Python<'_>, path: PathBuf, master_key: &Bound<'_, PyAny>) -> PyResult<()> {
        let master = secret32(py, master_key, "the master key")?;
        Ok(self.inner.load_from(&path, &master[..])?)
    }

    #[staticmethod]
    fn read_provider_params(path: PathBuf) -> PyResult<Vec<u8>> {
        Ok(super::keyfile::read_provider_params(&path)?)
    }

    /// Why this keyring cannot open `envelope` (no key of its id, disabled, destroyed, or
    /// another key under that id), or None when it holds the key; nothing is decrypted.
    fn missing_key(&self, envelope: &[u8]) -> PyResult<Option<String>> {
        Ok(self.inner.missing_key(envelope)?)
    }

    /// The key id an envelope names (parsed from its header; nothing is decrypted).
    #[staticmethod]
    fn envelope_key_id(envelope: &[u8]) -> PyResult<u32> {
        Ok(envelope::parse_header(envelope)?.key_id)
    }

    fn __repr__(&self) -> PyResult<String> {
        let keys = self.inner.keys()?;
        let primary = self.inner.primary_key_id()?;
        Ok(format!(
            "Keyring(keys={}, primary={}, path={:?})",
            keys.len(),
            primary.map_or("None".into(), |p| p.to_string()),
            self.inner.path()?
        ))
    }
}

#[pyclass(module = "system0._core", name = "SigningKey", frozen)]
pub struct PySigningKey {
    pub inner: Arc<SigningKey>,
}

#[pymethods]
impl PySigningKey {
    #[new]
    fn new(py: Python<'_>, seed: &Bound<'_, PyAny>) -> PyResult<Self> {
        let seed = secret32(py, seed, "an Ed25519 seed")?;
        Ok(PySigningKey {
            inner: Arc::new(SigningKey::from_seed(&seed[..])?),
        })
    }

    #[staticmethod]
    fn generate() -> PyResult<Self> {
        Ok(PySigningKey {
            inner: Arc::new(SigningKey::generate()?),
        })
    }

    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.public_key())
    }

    fn sign<'py>(&self, py: Python<'py>, message: &[u8]) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.sign(message))
    }

    /// The 32-byte seed, for sealing into a TPM or a keyring. Handle as a secret.
    fn secret_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.seed()[..])
    }

    fn __repr__(&self) -> String {
        format!(
            "SigningKey(public_key={})",
            sign::hex(self.inner.public_key())
        )
    }
}

#[pyfunction]
fn ed25519_verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    sign::verify(public_key, message, signature)
}

/// Raw AES-256-GCM seal (ciphertext || tag): conformance tests only, never for data.
#[pyfunction]
fn _aes256gcm_seal<'py>(
    py: Python<'py>,
    key: &[u8],
    nonce: &[u8],
    plaintext: &[u8],
    aad: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(
        py,
        &envelope::raw_seal(key, nonce, plaintext, aad)?,
    ))
}

/// Raw AES-256-GCM open: conformance tests only.
#[pyfunction]
fn _aes256gcm_open<'py>(
    py: Python<'py>,
    key: &[u8],
    nonce: &[u8],
    sealed: &[u8],
    aad: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(
        py,
        &envelope::raw_open(key, nonce, sealed, aad)?,
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyKeyring>()?;
    m.add_class::<PySigningKey>()?;
    m.add_class::<PyKeyInfo>()?;
    m.add_function(wrap_pyfunction!(ed25519_verify, m)?)?;
    m.add("ENVELOPE_OVERHEAD", OVERHEAD)?;
    m.add_function(wrap_pyfunction!(_aes256gcm_seal, m)?)?;
    m.add_function(wrap_pyfunction!(_aes256gcm_open, m)?)?;
    Ok(())
}
