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

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use zeroize::Zeroizing;

use super::envelope::{self, CipherKey, OVERHEAD};
use super::keyfile::{
    atomic_write, master_key, read_u32, read_u64, split_file, BODY_MAGIC, FILE_MAGIC,
};
use super::nonce::os_random;
use crate::error::{CoreError, CoreResult};

pub const MAX_MESSAGES_PER_KEY: u64 = 1 << 32;
/// The key id under which the keyring file itself is sealed with the master key.
const MASTER_KEY_ID: u32 = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Active = 1,
    Disabled = 2,
    Destroyed = 3,
}

impl KeyStatus {
    pub fn name(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Disabled => "disabled",
            KeyStatus::Destroyed => "destroyed",
        }
    }
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(KeyStatus::Active),
            2 => Some(KeyStatus::Disabled),
            3 => Some(KeyStatus::Destroyed),
            _ => None,
        }
    }
}

struct Slot {
    id: u32,
    status: KeyStatus,
    created_unix_ns: u64,
    material: Option<Zeroizing<[u8; 32]>>,
    cipher: Option<CipherKey>,
    used: AtomicU64,
    /// Persisted upper bound of `used`: sealing beyond it first extends it on disk.
    reserved: u64,
}

/// Public facts about one key (never its material).
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub id: u32,
    pub status: KeyStatus,
    pub primary: bool,
    pub created_unix_ns: u64,
    pub messages: u64,
}

struct Store {
    path: PathBuf,
    master: CipherKey,
    provider_params: Vec<u8>,
}

struct State {
    slots: Vec<Slot>, // sorted by id
    primary: Option<u32>,
    next_id: u32,
    message_limit: u64,
    rotate_at: u64,
    auto_rotate: bool,
    store: Option<Store>,
}

pub struct Keyring {
    state: RwLock<State>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(<redacted>)")
    }
}

fn poisoned() -> CoreError {
    CoreError::Internal("keyring lock poisoned by a panic in another thread".into())
}

impl State {
    fn slot(&self, id: u32) -> CoreResult<&Slot> {
        self.slots
            .binary_search_by_key(&id, |s| s.id)
            .map(|i| &self.slots[i])
            .map_err(|_| {
                CoreError::Crypto(format!(
                    "no key with id {id} in this keyring; it was never added here (wrong \
                     keyring?)"
                ))
            })
    }
    fn slot_mut(&mut self, id: u32) -> CoreResult<&mut Slot> {
        match self.slots.binary_search_by_key(&id, |s| s.id) {
            Ok(i) => Ok(&mut self.slots[i]),
            Err(_) => Err(CoreError::Crypto(format!(
                "no key with id {id} in this keyring; it was never added here (wrong keyring?)"
            ))),
        }
    }
    fn primary_slot(&self) -> CoreResult<&Slot> {
        let id = self.primary.ok_or_else(|| {
            CoreError::Crypto(
                "the keyring has no primary key; add a key and promote it before encrypting".into(),
            )
        })?;
        self.slot(id)
    }
    /// How far `used` may grow without the slow path.
    fn fast_bound(&self, slot: &Slot) -> u64 {
        let cap = if self.auto_rotate {
            self.rotate_at
        } else {
            self.message_limit
        };
        if self.store.is_some() {
            cap.min(slot.reserved)
        } else {
            cap
        }
    }
    fn reserve_block(&self) -> u64 {
        (self.message_limit / 1024).clamp(1, 1 << 20)
    }

    fn add_key(&mut self, material: Zeroizing<[u8; 32]>) -> CoreResult<u32> {
        let id = self.next_id;
        if id == u32::MAX {
            return Err(CoreError::Crypto("the keyring ran out of key ids".into()));
        }
        let cipher = CipherKey::derive(&material)?;
        if self
            .slots
            .iter()
            .any(|s| s.cipher.as_ref().map(|c| c.commitment()) == Some(cipher.commitment()))
        {
            return Err(CoreError::InvalidArgument(
                "this key material is already in the keyring; add a fresh key".into(),
            ));
        }
        self.slots.push(Slot {
            id,
            status: KeyStatus::Active,
            created_unix_ns: crate::clock::to_unix_ns(crate::clock::now_ns()),
            material: Some(material),
            cipher: Some(cipher),
            used: AtomicU64::new(0),
            reserved: 0,
        });
        self.next_id += 1;
        Ok(id)
    }

    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut b = Zeroizing::new(Vec::with_capacity(64 + self.slots.len() * 60));
        b.extend_from_slice(BODY_MAGIC);
        b.extend_from_slice(&self.next_id.to_le_bytes());
        b.extend_from_slice(&self.primary.unwrap_or(0).to_le_bytes());
        b.extend_from_slice(&self.message_limit.to_le_bytes());
        b.extend_from_slice(&self.rotate_at.to_le_bytes());
        b.push(self.auto_rotate as u8);
        b.extend_from_slice(&(self.slots.len() as u32).to_le_bytes());
        for s in &self.slots {
            b.extend_from_slice(&s.id.to_le_bytes());
            b.push(s.status as u8);
            b.extend_from_slice(&s.created_unix_ns.to_le_bytes());
            b.extend_from_slice(&s.reserved.to_le_bytes());
            match &s.material {
                Some(m) => b.extend_from_slice(&m[..]),
                None => b.extend_from_slice(&[0u8; 32]),
            }
        }
        b
    }

    fn persist(&self) -> CoreResult<()> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let body = self.encode();
        let mut file = Vec::with_capacity(body.len() + 128);
        file.extend_from_slice(FILE_MAGIC);
        file.extend_from_slice(&(store.provider_params.len() as u32).to_le_bytes());
        file.extend_from_slice(&store.provider_params);
        let aad = file.clone();
        let sealed = envelope::seal(MASTER_KEY_ID, &store.master, &body, &aad)?;
        file.extend_from_slice(&sealed);
        atomic_write(&store.path, &file)
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
        let master = master_key(master)?;
        let data = fs::read(path).map_err(|e| CoreError::io("read the keyring file", path, &e))?;
        let (params, head, sealed) = split_file(path, &data)?;
        let master_cipher = CipherKey::derive(&master)?;
        let body = Zeroizing::new(envelope::open(&master_cipher, sealed, head).map_err(|e| {
            if e.to_string().contains("commitment") {
                CoreError::Crypto(format!(
                    "the master key does not open keyring {}: wrong passphrase, secret or TPM",
                    path.display()
                ))
            } else {
                CoreError::Integrity(format!(
                    "keyring file {} was altered (authentication failed); restore it from a \
                     backup",
                    path.display()
                ))
            }
        })?);
        let mut st = decode(&body)?;
        st.store = Some(Store {
            path: path.to_path_buf(),
            master: master_cipher,
            provider_params: params.to_vec(),
        });
        Ok(Keyring {
            state: RwLock::new(st),
        })
    }
}

fn decode(b: &[u8]) -> CoreResult<State> {
    let bad = |what: &str| CoreError::Integrity(format!("keyring body is malformed: {what}"));
    if b.len() < 4 || &b[..4] != BODY_MAGIC {
        return Err(bad("bad magic"));
    }
    let mut at = 4;
    let next_id = read_u32(b, &mut at)?;
    let primary = read_u32(b, &mut at)?;
    let message_limit = read_u64(b, &mut at)?;
    let rotate_at = read_u64(b, &mut at)?;
    let auto_rotate = *b.get(at).ok_or_else(|| bad("truncated"))? != 0;
    at += 1;
    let n = read_u32(b, &mut at)?;
    let mut slots = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let id = read_u32(b, &mut at)?;
        let status = KeyStatus::from_u8(*b.get(at).ok_or_else(|| bad("truncated"))?)
            .ok_or_else(|| bad("unknown key status"))?;
        at += 1;
        let created_unix_ns = read_u64(b, &mut at)?;
        let reserved = read_u64(b, &mut at)?;
        let raw = b.get(at..at + 32).ok_or_else(|| bad("truncated"))?;
        at += 32;
        let (material, cipher) = if status == KeyStatus::Destroyed {
            (None, None)
        } else {
            let mut m = Zeroizing::new([0u8; 32]);
            m.copy_from_slice(raw);
            let c = CipherKey::derive(&m)?;
            (Some(m), Some(c))
        };
        slots.push(Slot {
            id,
            status,
            created_unix_ns,
            material,
            cipher,
            // Everything reserved before the restart counts as used.
            used: AtomicU64::new(reserved),
            reserved,
        });
    }
    slots.sort_by_key(|s| s.id);
    Ok(State {
        slots,
        primary: (primary != 0).then_some(primary),
        next_id,
        message_limit,
        rotate_at,
        auto_rotate,
        store: None,
    })
}

#[cfg(test)]
#[path = "keyring_tests.rs"]
mod tests;
