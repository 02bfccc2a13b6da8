//! The system0 envelope: AES-256-GCM with key commitment.
//!
//! Layout of format 1 (all integers big-endian):
//!
//! ```text
//! offset  size  field
//! 0       1     format = 0x01
//! 1       4     key id
//! 5       12    nonce (96 random bits, see nonce.rs)
//! 17      32    key commitment C
//! 49      n     ciphertext
//! 49+n    16    GCM tag
//! ```
//!
//! Key commitment. Plain GCM is not committing: one can craft a ciphertext and tag that open
//! under two different keys ("invisible salamanders"). From each 256-bit key K system0 derives,
//! with HKDF-Expand-SHA256 (RFC 5869; K is already uniform, so Extract is skipped as §3.3
//! allows), an encryption key `K_enc = Expand(K, "system0/envelope/v1/aes-256-gcm", 32)` and a
//! commitment `C = Expand(K, "system0/envelope/v1/key-commitment", 32)`. C travels in the
//! envelope and decryption refuses before any AES work unless it equals the opening key's C.
//! Two keys accepting one envelope would need an HMAC-SHA256 collision, so an envelope opens
//! under exactly one key. C is a public fingerprint of the key (like the key id), not a secret.
//! The 49 header bytes are also GCM associated data, ahead of the caller's own, so the key id,
//! format and commitment cannot be swapped without failing the tag.

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM};
use ring::hkdf;
use zeroize::Zeroizing;

use super::nonce::random_nonce;
use super::zerobox::ZeroBox;
use crate::error::{CoreError, CoreResult};

pub const FORMAT_V1: u8 = 0x01;
pub const HEADER_LEN: usize = 1 + 4 + 12 + 32;
pub const TAG_LEN: usize = 16;
/// Bytes an envelope adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

const INFO_ENC: &[u8] = b"system0/envelope/v1/aes-256-gcm";
const INFO_COMMIT: &[u8] = b"system0/envelope/v1/key-commitment";

/// An AES-256-GCM key ready to use, with its commitment. Key schedule wiped on drop.
pub struct CipherKey {
    commitment: [u8; 32],
    aead: ZeroBox<LessSafeKey>,
}

impl std::fmt::Debug for CipherKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CipherKey(<redacted>)")
    }
}

fn expand(prk: &hkdf::Prk, info: &[u8], out: &mut [u8; 32]) -> CoreResult<()> {
    let infos = [info];
    prk.expand(&infos, hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(out))
        .map_err(|_| CoreError::Internal("HKDF-Expand of 32 bytes failed".into()))
}

impl CipherKey {
    pub fn derive(material: &[u8; 32]) -> CoreResult<Self> {
        let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, material);
        let mut enc = Zeroizing::new([0u8; 32]);
        expand(&prk, INFO_ENC, &mut enc)?;
        let mut commitment = [0u8; 32];
        expand(&prk, INFO_COMMIT, &mut commitment)?;
        let unbound = UnboundKey::new(&AES_256_GCM, &enc[..])
            .map_err(|_| CoreError::Internal("AES-256-GCM rejected a 32-byte key".into()))?;
        Ok(CipherKey {
            commitment,
            aead: ZeroBox::new(LessSafeKey::new(unbound)),
        })
    }

    pub fn commitment(&self) -> &[u8; 32] {
        &self.commitment
    }
}

/// The parsed fixed header of an envelope.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub key_id: u32,
    pub nonce: [u8; 12],
    pub commitment: [u8; 32],
}

pub fn parse_header(envelope: &[u8]) -> CoreResult<Header> {
    if envelope.len() < OVERHEAD {
        return Err(CoreError::Crypto(format!(
            "envelope is {} bytes, shorter than the {OVERHEAD}-byte minimum (header and tag); \
             it was truncated or is not a system0 envelope",
            envelope.len()
        )));
    }
    if envelope[0] != FORMAT_V1 {
        return Err(CoreError::Crypto(format!(
            "envelope format byte is 0x{:02x}, expected 0x{FORMAT_V1:02x}; it is not a system0 \
             envelope or was written by a newer version",
            envelope[0]
        )));
    }
    let mut key_id = [0u8; 4];
    key_id.copy_from_slice(&envelope[1..5]);
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&envelope[5..17]);
    let mut commitment = [0u8; 32];
    commitment.copy_from_slice(&envelope[17..49]);
    Ok(Header {
        key_id: u32::from_be_bytes(key_id),
        nonce,
        commitment,
    })
}

/// Run `f` with the GCM associated data: envelope header, then the caller's AAD.
fn with_aad<R>(header: &[u8], aad: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    if aad.is_empty() {
        f(header)
    } else {
        let mut joined = Vec::with_capacity(header.len() + aad.len());
        joined.extend_from_slice(header);
        joined.extend_from_slice(aad);
        f(&joined)
    }
}

/// Seal `plaintext` into `out`, which must be exactly `plaintext.len() + OVERHEAD` bytes.
pub fn seal_into(
    key_id: u32,
    key: &CipherKey,
    plaintext: &[u8],
    aad: &[u8],
    out: &mut [u8],
) -> CoreResult<()> {
    if out.len() != plaintext.len() + OVERHEAD {
        return Err(CoreError::Internal(
            "envelope buffer has the wrong size".into(),
        ));
    }
    out[HEADER_LEN..HEADER_LEN + plaintext.len()].copy_from_slice(plaintext);
    seal_prepared(key_id, key, aad, out)
}

/// Seal in place: `out` is `[49 bytes of room | plaintext | 16 bytes of room]`; the header
/// and tag are written into the room. Lets callers place the plaintext with a single copy.
pub fn seal_prepared(key_id: u32, key: &CipherKey, aad: &[u8], out: &mut [u8]) -> CoreResult<()> {
    if out.len() < OVERHEAD {
        return Err(CoreError::Internal("envelope buffer is too small".into()));
    }
    let nonce = random_nonce()?;
    out[0] = FORMAT_V1;
    out[1..5].copy_from_slice(&key_id.to_be_bytes());
    out[5..17].copy_from_slice(&nonce);
    out[17..49].copy_from_slice(&key.commitment);
    let body_len = out.len() - OVERHEAD;
    let (header, rest) = out.split_at_mut(HEADER_LEN);
    let (body, tag_out) = rest.split_at_mut(body_len);
    let tag = with_aad(header, aad, |a| {
        key.aead
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(a), body)
    })
    .map_err(|_| CoreError::Crypto("AES-GCM refused to seal (payload too large)".into()))?;
    tag_out.copy_from_slice(tag.as_ref());
    Ok(())
}

pub fn seal(key_id: u32, key: &CipherKey, plaintext: &[u8], aad: &[u8]) -> CoreResult<Vec<u8>> {
    let mut out = vec![0u8; plaintext.len() + OVERHEAD];
    seal_into(key_id, key, plaintext, aad, &mut out)?;
    Ok(out)
}

/// Open `envelope` into `out` (exactly `envelope.len() - OVERHEAD` bytes). On any failure
/// `out` is wiped: a caller never sees a partial plaintext.
pub fn open_into(key: &CipherKey, envelope: &[u8], aad: &[u8], out: &mut [u8]) -> CoreResult<()> {
    parse_header(envelope)?;
    if out.len() != envelope.len() - OVERHEAD {
        return Err(CoreError::Internal(
            "plaintext buffer has the wrong size".into(),
        ));
    }
    out.copy_from_slice(&envelope[HEADER_LEN..envelope.len() - TAG_LEN]);
    open_prepared(key, envelope, aad, out)
}

/// Open in place: `out` already holds a copy of the envelope's ciphertext; the header and
/// tag are read from `envelope`. On failure `out` is wiped.
pub fn open_prepared(
    key: &CipherKey,
    envelope: &[u8],
    aad: &[u8],
    out: &mut [u8],
) -> CoreResult<()> {
    let header = parse_header(envelope)?;
    if out.len() != envelope.len() - OVERHEAD {
        return Err(CoreError::Internal(
            "plaintext buffer has the wrong size".into(),
        ));
    }
    if header.commitment != key.commitment {
        out.iter_mut().for_each(|b| *b = 0);
        return Err(CoreError::Crypto(format!(
            "envelope for key {} carries a key commitment that does not match that key: it \
             was sealed under a different key (or crafted to open under two keys); refusing \
             to decrypt",
            header.key_id
        )));
    }
    let body_end = envelope.len() - TAG_LEN;
    let tag = Tag::try_from(&envelope[body_end..])
        .map_err(|_| CoreError::Internal("GCM tag is not 16 bytes".into()))?;
    let opened = with_aad(&envelope[..HEADER_LEN], aad, |a| {
        key.aead.open_in_place_separate_tag(
            Nonce::assume_unique_for_key(header.nonce),
            Aad::from(a),
            tag,
            out,
            0..,
        )
    });
    if opened.is_err() {
        out.iter_mut().for_each(|b| *b = 0);
        return Err(CoreError::Crypto(format!(
            "envelope for key {} failed authentication: the ciphertext, tag or associated data \
             was altered, or the associated data given differs from the one used to encrypt",
            header.key_id
        )));
    }
    Ok(())
}

pub fn open(key: &CipherKey, envelope: &[u8], aad: &[u8]) -> CoreResult<Vec<u8>> {
    let mut out = vec![0u8; envelope.len().saturating_sub(OVERHEAD)];
    open_into(key, envelope, aad, &mut out)?;
    Ok(out)
}

/// Raw AES-256-GCM (96-bit nonce, 128-bit tag) with the caller's key and nonce: no envelope,
/// no commitment. Only for conformance tests against NIST CAVP vectors; never for data.
pub fn raw_seal(key: &[u8], nonce: &[u8], plaintext: &[u8], aad: &[u8]) -> CoreResult<Vec<u8>> {
    let k = raw_key(key, nonce)?;
    let mut out = plaintext.to_vec();
    let n = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| CoreError::InvalidArgument("nonce must be 12 bytes".into()))?;
    k.seal_in_place_append_tag(n, Aad::from(aad), &mut out)
        .map_err(|_| CoreError::Crypto("AES-GCM refused to seal".into()))?;
    Ok(out)
}

/// Counterpart of [`raw_seal`]; `sealed` is ciphertext followed by the 16-byte tag.
pub fn raw_open(key: &[u8], nonce: &[u8], sealed: &[u8], aad: &[u8]) -> CoreResult<Vec<u8>> {
    let k = raw_key(key, nonce)?;
    let mut out = sealed.to_vec();
    let n = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| CoreError::InvalidArgument("nonce must be 12 bytes".into()))?;
    let len = k
        .open_in_place(n, Aad::from(aad), &mut out)
        .map_err(|_| CoreError::Crypto("AES-GCM authentication failed".into()))?
        .len();
    out.truncate(len);
    Ok(out)
}

fn raw_key(key: &[u8], nonce: &[u8]) -> CoreResult<LessSafeKey> {
    if key.len() != 32 || nonce.len() != 12 {
        return Err(CoreError::InvalidArgument(format!(
            "raw AES-256-GCM needs a 32-byte key and a 12-byte nonce, got {} and {}",
            key.len(),
            nonce.len()
        )));
    }
    let unbound = UnboundKey::new(&AES_256_GCM, key)
        .map_err(|_| CoreError::Internal("AES-256-GCM rejected a 32-byte key".into()))?;
    Ok(LessSafeKey::new(unbound))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> CipherKey {
        CipherKey::derive(&[b; 32]).unwrap()
    }

    #[test]
    fn roundtrip_with_and_without_aad() {
        let k = key(7);
        for aad in [&b""[..], b"context"] {
            let env = seal(9, &k, b"hello", aad).unwrap();
            assert_eq!(env.len(), 5 + OVERHEAD);
            assert_eq!(parse_header(&env).unwrap().key_id, 9);
            assert_eq!(open(&k, &env, aad).unwrap(), b"hello");
        }
    }

    #[test]
    fn every_bit_flip_is_rejected() {
        let k = key(1);
        let env = seal(3, &k, b"attack at dawn", b"aad").unwrap();
        for i in 0..env.len() * 8 {
            let mut bad = env.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(open(&k, &bad, b"aad").is_err(), "bit {i}");
        }
        assert!(open(&k, &env, b"other").is_err());
    }

    #[test]
    fn wrong_key_fails_on_commitment() {
        let env = seal(1, &key(1), b"x", b"").unwrap();
        let err = open(&key(2), &env, b"").unwrap_err();
        assert!(err.to_string().contains("commitment"));
    }
}
