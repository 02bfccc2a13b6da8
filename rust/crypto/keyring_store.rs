//! The keyring on disk: its state encoded as a body sealed under the master key, written
//! atomically, and read back. A destroyed key is written as zeros, so the file keeps no
//! material of it (crypto-shredding); counts read back are taken as used (a restart can only
//! over-count, never reuse nonce budget).

use std::fs;
use std::path::Path;
use std::sync::atomic::AtomicU64;

use zeroize::Zeroizing;

use super::envelope::{self, CipherKey};
use super::keyfile::{
    atomic_write, master_key, read_u32, read_u64, split_file, BODY_MAGIC, FILE_MAGIC,
};
use super::keyring_state::{KeyStatus, Slot, State, Store};
use crate::error::{CoreError, CoreResult};

/// The key id under which the keyring file itself is sealed with the master key.
const MASTER_KEY_ID: u32 = 0;

impl State {
    pub(super) fn encode(&self) -> Zeroizing<Vec<u8>> {
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

    pub(super) fn persist(&self) -> CoreResult<()> {
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

/// The state stored at `path`, opened with `master` (32 bytes from a KeyProvider).
pub(super) fn load_state(path: &Path, master: &[u8]) -> CoreResult<State> {
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
    Ok(st)
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
