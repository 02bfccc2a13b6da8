//! Unit tests of the keyring (a separate file to keep keyring.rs small).

use std::fs;

use super::*;
use crate::crypto::keyfile::read_provider_params;

#[test]
fn rotation_keeps_old_data_readable_and_destroy_shreds() {
    let kr = Keyring::new(MAX_MESSAGES_PER_KEY, None, true).unwrap();
    let a = kr.rotate().unwrap();
    let e1 = kr.encrypt(b"one", b"").unwrap();
    let b = kr.rotate().unwrap();
    let e2 = kr.encrypt(b"two", b"").unwrap();
    assert_ne!(a, b);
    assert_eq!(kr.decrypt(&e1, b"").unwrap(), b"one");
    assert_eq!(kr.decrypt(&e2, b"").unwrap(), b"two");
    kr.destroy(a).unwrap();
    assert!(kr
        .decrypt(&e1, b"")
        .unwrap_err()
        .to_string()
        .contains("destroyed"));
    assert!(kr.destroy(b).is_err()); // primary
}

#[test]
fn limit_without_rotation_refuses() {
    let kr = Keyring::new(3, Some(3), false).unwrap();
    kr.rotate().unwrap();
    for _ in 0..3 {
        kr.encrypt(b"x", b"").unwrap();
    }
    assert!(kr
        .encrypt(b"x", b"")
        .unwrap_err()
        .to_string()
        .contains("limit"));
}

#[test]
fn persisted_roundtrip_and_wrong_master() {
    let dir = std::env::temp_dir().join(format!("s0kr-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("k.bin");
    let kr = Keyring::new(MAX_MESSAGES_PER_KEY, None, true).unwrap();
    kr.rotate().unwrap();
    kr.save(&path, &[5u8; 32], b"params").unwrap();
    let env = kr.encrypt(b"secret", b"").unwrap();
    let back = Keyring::load(&path, &[5u8; 32]).unwrap();
    assert_eq!(back.decrypt(&env, b"").unwrap(), b"secret");
    assert_eq!(read_provider_params(&path).unwrap(), b"params");
    assert!(Keyring::load(&path, &[6u8; 32]).is_err());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_key_names_what_the_keyring_lacks_without_decrypting() {
    let kr = Keyring::new(MAX_MESSAGES_PER_KEY, None, true).unwrap();
    let a = kr.rotate().unwrap();
    let e1 = kr.encrypt(b"one", b"").unwrap();
    assert_eq!(kr.missing_key(&e1).unwrap(), None);
    let other = Keyring::new(MAX_MESSAGES_PER_KEY, None, true).unwrap();
    assert_eq!(other.rotate().unwrap(), a); // the same id, another key
    assert!(other
        .missing_key(&e1)
        .unwrap()
        .unwrap()
        .contains("another key"));
    let b = kr.rotate().unwrap();
    let e2 = kr.encrypt(b"two", b"").unwrap();
    assert!(other
        .missing_key(&e2)
        .unwrap()
        .unwrap()
        .contains("not in the keyring"));
    kr.destroy(a).unwrap();
    assert!(kr.missing_key(&e1).unwrap().unwrap().contains("destroyed"));
    assert_eq!(kr.missing_key(&e2).unwrap(), None);
    kr.rotate().unwrap();
    kr.disable(b).unwrap();
    assert!(kr.missing_key(&e2).unwrap().unwrap().contains("disabled"));
    assert!(kr.missing_key(b"short").is_err()); // not an envelope at all
}
