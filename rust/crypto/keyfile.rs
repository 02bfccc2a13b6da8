//! The keyring file: its framing, atomic replacement and small readers.
//!
//! ```text
//! "S0KEYRING\x01" | provider params length (4, LE) | provider params (public, e.g. JSON)
//! | envelope sealed under the master key (key id 0), associated data = everything before it
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{CoreError, CoreResult};

pub(super) const FILE_MAGIC: &[u8; 10] = b"S0KEYRING\x01";
pub(super) const BODY_MAGIC: &[u8; 4] = b"S0KR";

/// Replace `path` with `data` so that a crash leaves either the old or the new file.
pub fn atomic_write(path: &Path, data: &[u8]) -> CoreResult<()> {
    let io = |what: &str, e: std::io::Error| CoreError::io(what, path, &e);
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    {
        let mut f = fs::File::create(&tmp).map_err(|e| io("create a temporary file beside", e))?;
        f.write_all(data).map_err(|e| io("write", e))?;
        f.sync_all().map_err(|e| io("fsync", e))?;
    }
    fs::rename(&tmp, path).map_err(|e| io("rename into place", e))?;
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

pub(super) fn read_u32(b: &[u8], at: &mut usize) -> CoreResult<u32> {
    let v = b
        .get(*at..*at + 4)
        .ok_or_else(|| CoreError::Integrity("keyring body is truncated".into()))?;
    *at += 4;
    Ok(u32::from_le_bytes([v[0], v[1], v[2], v[3]]))
}
pub(super) fn read_u64(b: &[u8], at: &mut usize) -> CoreResult<u64> {
    let v = b
        .get(*at..*at + 8)
        .ok_or_else(|| CoreError::Integrity("keyring body is truncated".into()))?;
    *at += 8;
    let mut a = [0u8; 8];
    a.copy_from_slice(v);
    Ok(u64::from_le_bytes(a))
}

/// The provider parameters stored (in the clear, authenticated) at the head of a keyring file.
pub fn read_provider_params(path: &Path) -> CoreResult<Vec<u8>> {
    let data = fs::read(path).map_err(|e| CoreError::io("read the keyring file", path, &e))?;
    Ok(split_file(path, &data)?.0.to_vec())
}

pub(super) fn split_file<'a>(
    path: &Path,
    data: &'a [u8],
) -> CoreResult<(&'a [u8], &'a [u8], &'a [u8])> {
    let bad = || {
        CoreError::Integrity(format!(
            "{} is not a system0 keyring file (bad magic or truncated header)",
            path.display()
        ))
    };
    if data.len() < FILE_MAGIC.len() + 4 || &data[..FILE_MAGIC.len()] != FILE_MAGIC {
        return Err(bad());
    }
    let mut at = FILE_MAGIC.len();
    let n = read_u32(data, &mut at).map_err(|_| bad())? as usize;
    let params = data.get(at..at + n).ok_or_else(bad)?;
    let head = &data[..at + n];
    Ok((params, head, &data[at + n..]))
}

pub(super) fn master_key(master: &[u8]) -> CoreResult<Zeroizing<[u8; 32]>> {
    if master.len() != 32 {
        return Err(CoreError::InvalidArgument(format!(
            "a master key must be 32 bytes, the KeyProvider returned {}",
            master.len()
        )));
    }
    let mut k = Zeroizing::new([0u8; 32]);
    k.copy_from_slice(master);
    Ok(k)
}
