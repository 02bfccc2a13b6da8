//! The keyring's key table: each key's status, material and message count, which key is
//! primary, and the nonce budget (see keyring.rs for the policy). Invariants: slots are sorted
//! by id; a destroyed key holds no material; a key never seals past `message_limit`, and a
//! persisted key never past its on-disk `reserved` count.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;

use zeroize::Zeroizing;

use super::envelope::CipherKey;
use crate::error::{CoreError, CoreResult};

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
    pub(super) fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(KeyStatus::Active),
            2 => Some(KeyStatus::Disabled),
            3 => Some(KeyStatus::Destroyed),
            _ => None,
        }
    }
}

pub(super) struct Slot {
    pub(super) id: u32,
    pub(super) status: KeyStatus,
    pub(super) created_unix_ns: u64,
    pub(super) material: Option<Zeroizing<[u8; 32]>>,
    pub(super) cipher: Option<CipherKey>,
    pub(super) used: AtomicU64,
    /// Persisted upper bound of `used`: sealing beyond it first extends it on disk.
    pub(super) reserved: u64,
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

pub(super) struct Store {
    pub(super) path: PathBuf,
    pub(super) master: CipherKey,
    pub(super) provider_params: Vec<u8>,
}

pub(super) struct State {
    pub(super) slots: Vec<Slot>, // sorted by id
    pub(super) primary: Option<u32>,
    pub(super) next_id: u32,
    pub(super) message_limit: u64,
    pub(super) rotate_at: u64,
    pub(super) auto_rotate: bool,
    pub(super) store: Option<Store>,
}

pub(super) fn poisoned() -> CoreError {
    CoreError::Internal("keyring lock poisoned by a panic in another thread".into())
}

impl State {
    pub(super) fn slot(&self, id: u32) -> CoreResult<&Slot> {
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
    pub(super) fn slot_mut(&mut self, id: u32) -> CoreResult<&mut Slot> {
        match self.slots.binary_search_by_key(&id, |s| s.id) {
            Ok(i) => Ok(&mut self.slots[i]),
            Err(_) => Err(CoreError::Crypto(format!(
                "no key with id {id} in this keyring; it was never added here (wrong keyring?)"
            ))),
        }
    }
    pub(super) fn primary_slot(&self) -> CoreResult<&Slot> {
        let id = self.primary.ok_or_else(|| {
            CoreError::Crypto(
                "the keyring has no primary key; add a key and promote it before encrypting".into(),
            )
        })?;
        self.slot(id)
    }
    /// How far `used` may grow without the slow path.
    pub(super) fn fast_bound(&self, slot: &Slot) -> u64 {
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
    pub(super) fn reserve_block(&self) -> u64 {
        (self.message_limit / 1024).clamp(1, 1 << 20)
    }

    pub(super) fn add_key(&mut self, material: Zeroizing<[u8; 32]>) -> CoreResult<u32> {
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
}
