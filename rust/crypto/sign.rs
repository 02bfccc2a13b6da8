//! Ed25519 identity keys (ring): sign ledger checkpoints; anyone verifies with the public key.

use ring::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use zeroize::Zeroizing;

use super::nonce::os_random;
use super::zerobox::ZeroBox;
use crate::error::{CoreError, CoreResult};

pub const PUBLIC_KEY_LEN: usize = 32;
pub const SIGNATURE_LEN: usize = 64;

pub struct SigningKey {
    seed: Zeroizing<[u8; 32]>,
    pair: ZeroBox<Ed25519KeyPair>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(public={})", hex(self.public_key()))
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl SigningKey {
    pub fn generate() -> CoreResult<Self> {
        let mut seed = Zeroizing::new([0u8; 32]);
        os_random(&mut seed[..])?;
        Self::from_seed(&seed[..])
    }

    pub fn from_seed(seed: &[u8]) -> CoreResult<Self> {
        if seed.len() != 32 {
            return Err(CoreError::InvalidArgument(format!(
                "an Ed25519 seed is 32 bytes, got {}",
                seed.len()
            )));
        }
        let mut s = Zeroizing::new([0u8; 32]);
        s.copy_from_slice(seed);
        let pair = Ed25519KeyPair::from_seed_unchecked(&s[..])
            .map_err(|_| CoreError::Crypto("Ed25519 rejected the seed".into()))?;
        Ok(SigningKey {
            seed: s,
            pair: ZeroBox::new(pair),
        })
    }

    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        out
    }
}

/// True when `sig` is a valid Ed25519 signature of `message` under `public_key`.
pub fn verify(public_key: &[u8], message: &[u8], sig: &[u8]) -> bool {
    UnparsedPublicKey::new(&signature::ED25519, public_key)
        .verify(message, sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8032_test_1() {
        // RFC 8032 §7.1, TEST 1 (empty message).
        let seed = unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let k = SigningKey::from_seed(&seed).unwrap();
        assert_eq!(
            hex(k.public_key()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let sig = k.sign(b"");
        assert_eq!(
            hex(&sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert!(verify(k.public_key(), b"", &sig));
        assert!(!verify(k.public_key(), b"x", &sig));
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
