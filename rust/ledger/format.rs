//! On-disk format of a ledger directory (all integers little-endian).
//!
//! ```text
//! ledger.meta      magic "S0LMETA\x01" | ledger id (16) | created unix ns (8)
//!                  | Ed25519 public key (32, zeros when none) | crc32 (4)
//! seg-<first index, 20 digits>.s0l
//!   header         magic "S0LEDGR\x01" | ledger id (16) | first index (8) | crc32 (4)
//!   records        body length (4) | body | crc32 over length and body (4)
//!   body (= leaf)  kind 0x01 (1) | index (8) | time unix ns (8) | previous root (32) | envelope
//! checkpoints.s0c  records of 116 bytes: tree size (8) | root (32) | time unix ns (8)
//!                  | Ed25519 signature (64) | crc32 over the rest (4)
//! ```
//!
//! The Merkle leaf is the whole body: ciphertext plus metadata. An auditor without keys can
//! rebuild the tree and check it against signed checkpoints. The envelope's associated data
//! is the ledger id followed by the first 49 body bytes (kind, index, time, previous root), so
//! an entry cannot be moved to another place, another history or another ledger.

use std::io::{self, Read};

use crate::error::{CoreError, CoreResult};

use super::merkle::Hash;

pub const META_MAGIC: &[u8; 8] = b"S0LMETA\x01";
pub const META_LEN: usize = 8 + 16 + 8 + 32 + 4;
pub const SEG_MAGIC: &[u8; 8] = b"S0LEDGR\x01";
pub const SEG_HEADER_LEN: usize = 8 + 16 + 8 + 4;
pub const KIND_ENTRY: u8 = 0x01;
pub const BODY_FIXED: usize = 1 + 8 + 8 + 32;
pub const RECORD_OVERHEAD: usize = 4 + 4;
pub const MAX_BODY: usize = 64 << 20;
pub const CHECKPOINT_LEN: usize = 8 + 32 + 8 + 64 + 4;
pub const CHECKPOINT_DOMAIN: &[u8] = b"system0/ledger/checkpoint/v1\0";

pub fn crc(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

pub struct Meta {
    pub ledger_id: [u8; 16],
    pub created_unix_ns: u64,
    pub public_key: Option<[u8; 32]>,
}

impl Meta {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(META_LEN);
        b.extend_from_slice(META_MAGIC);
        b.extend_from_slice(&self.ledger_id);
        b.extend_from_slice(&self.created_unix_ns.to_le_bytes());
        b.extend_from_slice(&self.public_key.unwrap_or([0; 32]));
        let c = crc(&[&b]);
        b.extend_from_slice(&c.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> CoreResult<Meta> {
        if b.len() != META_LEN
            || &b[..8] != META_MAGIC
            || crc(&[&b[..META_LEN - 4]]) != u32_at(b, META_LEN - 4)
        {
            return Err(CoreError::Integrity(
                "ledger.meta is damaged (bad magic, length or checksum); the ledger's identity \
                 cannot be trusted"
                    .into(),
            ));
        }
        let mut ledger_id = [0u8; 16];
        ledger_id.copy_from_slice(&b[8..24]);
        let mut pk = [0u8; 32];
        pk.copy_from_slice(&b[32..64]);
        Ok(Meta {
            ledger_id,
            created_unix_ns: u64_at(b, 24),
            public_key: (pk != [0; 32]).then_some(pk),
        })
    }
}

pub fn segment_name(first_index: u64) -> String {
    format!("seg-{first_index:020}.s0l")
}

pub fn segment_header(ledger_id: &[u8; 16], first_index: u64) -> [u8; SEG_HEADER_LEN] {
    let mut h = [0u8; SEG_HEADER_LEN];
    h[..8].copy_from_slice(SEG_MAGIC);
    h[8..24].copy_from_slice(ledger_id);
    h[24..32].copy_from_slice(&first_index.to_le_bytes());
    let c = crc(&[&h[..32]]);
    h[32..].copy_from_slice(&c.to_le_bytes());
    h
}

/// Check a segment header; returns its first index.
pub fn check_segment_header(h: &[u8], ledger_id: &[u8; 16], name: &str) -> CoreResult<u64> {
    if h.len() < SEG_HEADER_LEN
        || &h[..8] != SEG_MAGIC
        || crc(&[&h[..32]]) != u32_at(h, 32)
        || &h[8..24] != ledger_id
    {
        return Err(CoreError::Integrity(format!(
            "segment {name} has a damaged header or belongs to another ledger"
        )));
    }
    Ok(u64_at(h, 24))
}

/// Append one record (length, body, crc) to `out`, the body built by `fill_body`, which gets
/// the body slice (of `body_len` bytes, its first 49 already written).
pub fn push_record(
    out: &mut Vec<u8>,
    index: u64,
    time_unix_ns: u64,
    prev_root: &Hash,
    body_len: usize,
    fill_envelope: impl FnOnce(&[u8], &mut [u8]) -> CoreResult<()>,
) -> CoreResult<std::ops::Range<usize>> {
    let start = out.len();
    out.resize(start + 4 + body_len + 4, 0);
    out[start..start + 4].copy_from_slice(&(body_len as u32).to_le_bytes());
    let body_start = start + 4;
    {
        let body = &mut out[body_start..body_start + body_len];
        body[0] = KIND_ENTRY;
        body[1..9].copy_from_slice(&index.to_le_bytes());
        body[9..17].copy_from_slice(&time_unix_ns.to_le_bytes());
        body[17..49].copy_from_slice(prev_root);
        let (fixed, envelope) = body.split_at_mut(BODY_FIXED);
        fill_envelope(fixed, envelope)?;
    }
    let c = crc(&[&out[start..body_start + body_len]]);
    out[body_start + body_len..].copy_from_slice(&c.to_le_bytes());
    Ok(body_start..body_start + body_len)
}

/// The fields of a body, parsed.
pub struct Body<'a> {
    pub index: u64,
    pub time_unix_ns: u64,
    pub prev_root: Hash,
    pub envelope: &'a [u8],
}

pub fn parse_body(body: &[u8]) -> Option<Body<'_>> {
    if body.len() < BODY_FIXED || body[0] != KIND_ENTRY {
        return None;
    }
    let mut prev_root = [0u8; 32];
    prev_root.copy_from_slice(&body[17..49]);
    Some(Body {
        index: u64_at(body, 1),
        time_unix_ns: u64_at(body, 9),
        prev_root,
        envelope: &body[BODY_FIXED..],
    })
}

/// The associated data an entry's envelope is sealed with.
pub fn entry_aad(ledger_id: &[u8; 16], body_fixed: &[u8]) -> [u8; 16 + BODY_FIXED] {
    let mut a = [0u8; 16 + BODY_FIXED];
    a[..16].copy_from_slice(ledger_id);
    a[16..].copy_from_slice(&body_fixed[..BODY_FIXED]);
    a
}

/// What reading the next record found.
pub enum Next {
    Record(Vec<u8>),
    End,
    /// The file ends inside a record (a torn write, or a truncation).
    Incomplete,
    /// The record is complete but its checksum or length is wrong.
    Corrupt(&'static str),
}

/// Read the next record from `r`; `Record` carries the body. `consumed` is set to the bytes
/// the record occupies (when it is complete).
pub fn read_record(r: &mut impl Read, consumed: &mut u64) -> io::Result<Next> {
    let mut len = [0u8; 4];
    match read_full(r, &mut len)? {
        0 => return Ok(Next::End),
        4 => {}
        _ => return Ok(Next::Incomplete),
    }
    let n = u32::from_le_bytes(len) as usize;
    if !(BODY_FIXED..=MAX_BODY).contains(&n) {
        return Ok(Next::Corrupt("its length field is impossible"));
    }
    let mut buf = vec![0u8; n + 4];
    if read_full(r, &mut buf)? != n + 4 {
        return Ok(Next::Incomplete);
    }
    *consumed = (n + 8) as u64;
    let stored = u32_at(&buf, n);
    if crc(&[&len, &buf[..n]]) != stored {
        return Ok(Next::Corrupt("its checksum does not match its bytes"));
    }
    buf.truncate(n);
    Ok(Next::Record(buf))
}

/// A read buffer for a file: up to 1 MiB, never more than the file.
pub fn buffer_size(f: &std::fs::File) -> usize {
    f.metadata()
        .map(|m| m.len().clamp(4096, 1 << 20) as usize)
        .unwrap_or(64 * 1024)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// A signed statement: the ledger had `size` entries with `root` at `time_unix_ns`.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub size: u64,
    pub root: Hash,
    pub time_unix_ns: u64,
    pub signature: [u8; 64],
}

impl Checkpoint {
    pub fn signed_message(ledger_id: &[u8; 16], size: u64, root: &Hash, time: u64) -> Vec<u8> {
        let mut m = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 64);
        m.extend_from_slice(CHECKPOINT_DOMAIN);
        m.extend_from_slice(ledger_id);
        m.extend_from_slice(&size.to_le_bytes());
        m.extend_from_slice(root);
        m.extend_from_slice(&time.to_le_bytes());
        m
    }

    pub fn verify(&self, ledger_id: &[u8; 16], public_key: &[u8]) -> bool {
        let msg = Self::signed_message(ledger_id, self.size, &self.root, self.time_unix_ns);
        crate::crypto::sign::verify(public_key, &msg, &self.signature)
    }

    pub fn encode(&self) -> [u8; CHECKPOINT_LEN] {
        let mut b = [0u8; CHECKPOINT_LEN];
        b[..8].copy_from_slice(&self.size.to_le_bytes());
        b[8..40].copy_from_slice(&self.root);
        b[40..48].copy_from_slice(&self.time_unix_ns.to_le_bytes());
        b[48..112].copy_from_slice(&self.signature);
        let c = crc(&[&b[..112]]);
        b[112..].copy_from_slice(&c.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Option<Checkpoint> {
        if b.len() != CHECKPOINT_LEN || crc(&[&b[..112]]) != u32_at(b, 112) {
            return None;
        }
        let mut root = [0u8; 32];
        root.copy_from_slice(&b[8..40]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&b[48..112]);
        Some(Checkpoint {
            size: u64_at(b, 0),
            root,
            time_unix_ns: u64_at(b, 40),
            signature,
        })
    }
}

/// Parse a whole checkpoints file; a damaged record is an integrity failure naming it.
pub fn parse_checkpoints(data: &[u8]) -> CoreResult<Vec<Checkpoint>> {
    if data.len() % CHECKPOINT_LEN != 0 {
        // A torn final checkpoint is possible after a crash; earlier ones must be whole.
        let whole = data.len() / CHECKPOINT_LEN;
        let mut v = parse_checkpoints(&data[..whole * CHECKPOINT_LEN])?;
        v.shrink_to_fit();
        return Ok(v);
    }
    data.chunks(CHECKPOINT_LEN)
        .enumerate()
        .map(|(i, c)| {
            Checkpoint::decode(c).ok_or_else(|| {
                CoreError::Integrity(format!(
                    "checkpoint {i} in checkpoints.s0c is damaged (checksum mismatch)"
                ))
            })
        })
        .collect()
}
