//! The keyring: numbered AES-256 keys, one primary for encryption, all usable for decryption
//! until disabled or destroyed.
//!
//! Nonce budget. Nonces are 96 random bits, so NIST SP 800-38D §8.3 caps one key at 2^32
//! messages (collision odds below 2^-32). Each key counts the envelopes sealed under it; at
//! `rotate_at` (default 2^31, half the cap) a keyring with `auto_rotate` generates and promotes
//! a new key, and no key ever seals past `message_limit` (default and maximum 2^32): without
//! auto-rotation the caller gets a `CryptoError`. A persisted keyring reserves counts in blocks
//! before using them (the reservation is written to the keyring file first), so a crash or
//! restart can only over-count, never reuse budget.
//!
//! Rotation adds a key and promotes it; nothing is re-encrypted and old keys keep decrypting.
//! `destroy` wipes a key's material from memory and from the keyring file (crypto-shredding):
//! its envelopes can never be opened again.
//!
//! keyring_state.rs holds the key table and the budget, keyring_store.rs the file; this file
//! the operations callers use.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use zeroize::Zeroizing;

use super::envelope::{self, CipherKey, OVERHEAD};
use super::keyfile::master_key;
use super::keyring_state::{poisoned, State, Store};
pub use super::keyring_state::{KeyInfo, KeyStatus};
use super::keyring_store;
use super::nonce::os_random;
use crate::error::{CoreError, CoreResult};

pub const MAX_MESSAGES_PER_KEY: u64 = 1 << 32;

pub struct Keyring {
    state: RwLock<State>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(<redacted>)")
    }
}

impl Keyring {
    pub fn new(message_limit: u64, rotate_at: Option<u64>, auto_rotate: bool) -> CoreResult<Self> {
        if message_limit == 0 || message_limit > MAX_MESSAGES_PER_KEY {
            return Err(CoreError::InvalidArgument(format!(
                "message_limit must be between 1 and 2**32 (random 96-bit nonces), got \
                 {message_limit}"
            )));
        }
        let rotate_at = rotate_at.unwrap_or(message_limit.div_ceil(2));
        if rotate_at == 0 || rotate_at > message_limit {
            return Err(CoreError::InvalidArgument(format!(
                "rotate_at must be between 1 and message_limit ({message_limit}), got {rotate_at}"
            )));
        }
        Ok(Keyring {
            state: RwLock::new(State {
                slots: Vec::new(),
                primary: None,
                next_id: 1,
                message_limit,
                rotate_at,
                auto_rotate,
                store: None,
            }),
        })
    }

    fn read(&self) -> CoreResult<RwLockReadGuard<'_, State>> {
        self.state.read().map_err(|_| poisoned())
    }
    fn write(&self) -> CoreResult<RwLockWriteGuard<'_, State>> {
        self.state.write().map_err(|_| poisoned())
    }

    /// Add a key (fresh random material when `material` is None); returns its id.
    pub fn add(&self, material: Option<&[u8]>) -> CoreResult<u32> {
        let mut key = Zeroizing::new([0u8; 32]);
        match material {
            Some(m) if m.len() == 32 => key.copy_from_slice(m),
            Some(m) => {
                return Err(CoreError::InvalidArgument(format!(
                    "key material must be exactly 32 bytes (AES-256), got {} bytes",
                    m.len()
                )))
            }
            None => os_random(&mut key[..])?,
        }
        let mut st = self.write()?;
        let id = st.add_key(key)?;
        st.persist()?;
        Ok(id)
    }

    pub fn promote(&self, id: u32) -> CoreResult<()> {
        let mut st = self.write()?;
        let status = st.slot(id)?.status;
        if status != KeyStatus::Active {
            return Err(CoreError::Crypto(format!(
                "key {id} is {}; only an active key can become primary",
                status.name()
            )));
        }
        st.primary = Some(id);
        st.persist()
    }

    fn set_status(&self, id: u32, to: KeyStatus) -> CoreResult<()> {
        let mut st = self.write()?;
        if st.primary == Some(id) && to != KeyStatus::Active {
            return Err(CoreError::Crypto(format!(
                "key {id} is the primary key; promote another key before you {} it",
                if to == KeyStatus::Destroyed {
                    "destroy"
                } else {
                    "disable"
                }
            )));
        }
        let slot = st.slot_mut(id)?;
        if slot.status == KeyStatus::Destroyed {
            if to == KeyStatus::Destroyed {
                return Ok(());
            }
            return Err(CoreError::Crypto(format!(
                "key {id} was destroyed; its material is gone and it cannot be re-enabled"
            )));
        }
        slot.status = to;
        if to == KeyStatus::Destroyed {
            slot.cipher = None; // ZeroBox wipes the key schedule
            slot.material = None; // Zeroizing wipes the material
        }
        st.persist()
    }

    pub fn disable(&self, id: u32) -> CoreResult<()> {
        self.set_status(id, KeyStatus::Disabled)
    }
    pub fn enable(&self, id: u32) -> CoreResult<()> {
        self.set_status(id, KeyStatus::Active)
    }
    pub fn destroy(&self, id: u32) -> CoreResult<()> {
        self.set_status(id, KeyStatus::Destroyed)
    }

    /// Generate a key and make it primary (rotation); returns the new id.
    pub fn rotate(&self) -> CoreResult<u32> {
        let mut key = Zeroizing::new([0u8; 32]);
        os_random(&mut key[..])?;
        let mut st = self.write()?;
        let id = st.add_key(key)?;
        st.primary = Some(id);
        st.persist()?;
        Ok(id)
    }

    /// The status of key `id`, or None when the keyring never held it.
    pub fn status(&self, id: u32) -> CoreResult<Option<KeyStatus>> {
        Ok(self.read()?.slot(id).ok().map(|s| s.status))
    }

    pub fn primary_key_id(&self) -> CoreResult<Option<u32>> {
        Ok(self.read()?.primary)
    }

    pub fn keys(&self) -> CoreResult<Vec<KeyInfo>> {
        let st = self.read()?;
        Ok(st
            .slots
            .iter()
            .map(|s| KeyInfo {
                id: s.id,
                status: s.status,
                primary: st.primary == Some(s.id),
                created_unix_ns: s.created_unix_ns,
                messages: s.used.load(Ordering::Relaxed),
            })
            .collect())
    }

    pub fn message_limit(&self) -> CoreResult<(u64, u64, bool)> {
        let st = self.read()?;
        Ok((st.message_limit, st.rotate_at, st.auto_rotate))
    }

    pub fn path(&self) -> CoreResult<Option<PathBuf>> {
        Ok(self.read()?.store.as_ref().map(|s| s.path.clone()))
    }

    /// Seal `plaintext` into `out` (`plaintext.len() + OVERHEAD` bytes) under the primary key.
    pub fn encrypt_into(&self, plaintext: &[u8], aad: &[u8], out: &mut [u8]) -> CoreResult<u32> {
        self.encrypt_with(|id, cipher| envelope::seal_into(id, cipher, plaintext, aad, out))
    }

    /// Seal in place under the primary key: `out` is `[49 bytes | plaintext | 16 bytes]`.
    pub fn encrypt_prepared(&self, aad: &[u8], out: &mut [u8]) -> CoreResult<u32> {
        self.encrypt_with(|id, cipher| envelope::seal_prepared(id, cipher, aad, out))
    }

    /// Take one message of the primary key's budget, then run `seal` with that key.
    fn encrypt_with(
        &self,
        mut seal: impl FnMut(u32, &CipherKey) -> CoreResult<()>,
    ) -> CoreResult<u32> {
        loop {
            {
                let st = self.read()?;
                let slot = st.primary_slot()?;
                let bound = st.fast_bound(slot);
                let taken = slot
                    .used
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                        (u < bound).then_some(u + 1)
                    })
                    .is_ok();
                if taken {
                    let cipher = slot
                        .cipher
                        .as_ref()
                        .ok_or_else(|| CoreError::Internal("primary key has no material".into()))?;
                    seal(slot.id, cipher)?;
                    return Ok(slot.id);
                }
            }
            self.slow_path()?;
        }
    }

    /// The primary key ran into its reservation, its rotation point or its hard limit.
    fn slow_path(&self) -> CoreResult<()> {
        let mut st = self.write()?;
        let limit = st.message_limit;
        let (id, used, reserved) = {
            let s = st.primary_slot()?;
            (s.id, s.used.load(Ordering::Acquire), s.reserved)
        };
        if st.auto_rotate && used >= st.rotate_at {
            let mut key = Zeroizing::new([0u8; 32]);
            os_random(&mut key[..])?;
            let new_id = st.add_key(key)?;
            st.primary = Some(new_id);
            return st.persist();
        }
        if used >= limit {
            return Err(CoreError::Crypto(format!(
                "key {id} has sealed {used} envelopes, its limit for random 96-bit nonces \
                 (message_limit={limit}); rotate the keyring (add and promote a new key) or \
                 enable auto_rotate"
            )));
        }
        if st.store.is_some() && used >= reserved {
            let block = st.reserve_block();
            let slot = st.slot_mut(id)?;
            slot.reserved = (reserved + block).min(limit);
            return st.persist();
        }
        Ok(()) // another thread already made room
    }

    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> CoreResult<Vec<u8>> {
        let mut out = vec![0u8; plaintext.len() + OVERHEAD];
        self.encrypt_into(plaintext, aad, &mut out)?;
        Ok(out)
    }

    /// Run `f` with the key that must open `envelope`, after checking its status.
    fn with_opening_key<R>(
        &self,
        envelope_bytes: &[u8],
        f: impl FnOnce(&CipherKey) -> CoreResult<R>,
    ) -> CoreResult<R> {
        let header = envelope::parse_header(envelope_bytes)?;
        let st = self.read()?;
        let slot = st.slot(header.key_id)?;
        match (slot.status, &slot.cipher) {
            (KeyStatus::Active, Some(cipher)) => f(cipher),
            (KeyStatus::Disabled, _) => Err(CoreError::Crypto(format!(
                "key {} is disabled; enable it to decrypt its envelopes",
                header.key_id
            ))),
            _ => Err(CoreError::Crypto(format!(
                "key {} was destroyed (crypto-shredded); its envelopes can no longer be \
                 decrypted by anyone",
                header.key_id
            ))),
        }
    }

    /// Why this keyring cannot open `envelope_bytes`, or None when it holds the active key
    /// that sealed it. Reads only the header: the key id, and the key commitment (a public
    /// fingerprint of the sealing key), so a keyring with another key under the same id is
    /// told apart from a tampered envelope without trying to decrypt it.
    pub fn missing_key(&self, envelope_bytes: &[u8]) -> CoreResult<Option<String>> {
        let header = envelope::parse_header(envelope_bytes)?;
        let st = self.read()?;
        let id = header.key_id;
        let Ok(slot) = st.slot(id) else {
            return Ok(Some(format!("its key {id} is not in the keyring given")));
        };
        Ok(match (slot.status, &slot.cipher) {
            (KeyStatus::Active, Some(c)) if c.commitment() == &header.commitment => None,
            (KeyStatus::Active, Some(_)) => Some(format!(
                "it was sealed under another key than the keyring's key {id} (a different \
                 keyring)"
            )),
            (KeyStatus::Disabled, _) => Some(format!("its key {id} is disabled")),
            _ => Some(format!("its key {id} was destroyed (crypto-shredded)")),
        })
    }

    pub fn decrypt_into(
        &self,
        envelope_bytes: &[u8],
        aad: &[u8],
        out: &mut [u8],
    ) -> CoreResult<()> {
        self.with_opening_key(envelope_bytes, |k| {
            envelope::open_into(k, envelope_bytes, aad, out)
        })
    }

    /// Open in place: `out` already holds a copy of the envelope's ciphertext.
    pub fn decrypt_prepared(
        &self,
        envelope_bytes: &[u8],
        aad: &[u8],
        out: &mut [u8],
    ) -> CoreResult<()> {
        self.with_opening_key(envelope_bytes, |k| {
            envelope::open_prepared(k, envelope_bytes, aad, out)
        })
    }

    pub fn decrypt(&self, envelope_bytes: &[u8], aad: &[u8]) -> CoreResult<Vec<u8>> {
        self.with_opening_key(envelope_bytes, |k| envelope::open(k, envelope_bytes, aad))
    }

    /// Bind this keyring to `path`, sealed under `master` (32 bytes from a KeyProvider).
    pub fn save(&self, path: &Path, master: &[u8], provider_params: &[u8]) -> CoreResult<()> {
        let master = master_key(master)?;
        let mut st = self.write()?;
        st.store = Some(Store {
            path: path.to_path_buf(),
            master: CipherKey::derive(&master)?,
            provider_params: provider_params.to_vec(),
        });
        // From now on counts are reserved before use; existing counts become the reservation.
        for s in &mut st.slots {
            s.reserved = s.used.load(Ordering::Acquire);
        }
        st.persist()
    }

    /// Replace this keyring's state with the one stored at `path`.
    pub fn load_from(&self, path: &Path, master: &[u8]) -> CoreResult<()> {
        let loaded = Self::load(path, master)?;
        let state = loaded.state.into_inner().map_err(|_| poisoned())?;
        *self.write()? = state;
        Ok(())
    }

    pub fn load(path: &Path, master: &[u8]) -> CoreResult<Self> {
        Ok(Keyring {
            state: RwLock::new(keyring_store::load_state(path, master)?),
        })
    }
}

#[cfg(test)]
#[path = "keyring_tests.rs"]
mod tests;
