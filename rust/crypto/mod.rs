//! Encryption for system0: the AES-256-GCM envelope with key commitment (envelope.rs), random
//! nonces from pooled OS randomness (nonce.rs), the keyring with rotation and crypto-shredding
//! (keyring.rs), Ed25519 identity keys (sign.rs). All primitives come from `ring`.

pub mod envelope;
pub mod keyfile;
pub mod keyring;
pub mod keyring_state;
pub mod keyring_store;
pub mod nonce;
pub mod py;
pub mod py_key_info;
pub mod sign;
pub mod zerobox;

pub use envelope::{CipherKey, OVERHEAD};
pub use keyring::{KeyStatus, Keyring};
pub use sign::SigningKey;
