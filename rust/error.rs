//! One Rust error enum for the whole core, mapped to exactly one Python exception per variant
//! (as pyca/cryptography does). The exception classes live in `system0.errors` (Python), so
//! they can carry typed attributes and multiple bases (`ValidationError` is also a
//! `ValueError`); Rust imports them once and raises them.

use std::fmt;

use std::io::ErrorKind;
use std::path::Path;

use pyo3::import_exception;
use pyo3::prelude::*;

import_exception!(system0.errors, Error);
import_exception!(system0.errors, ValidationError);
import_exception!(system0.errors, CardinalityError);
import_exception!(system0.errors, ConfigError);
import_exception!(system0.errors, Overloaded);
import_exception!(system0.errors, DeadlineExceeded);
import_exception!(system0.errors, CircuitOpen);
import_exception!(system0.errors, Closed);
import_exception!(system0.errors, IntegrityError);
import_exception!(system0.errors, AccessDenied);
import_exception!(system0.errors, CryptoError);
import_exception!(system0.errors, InternalError);
import_exception!(system0.errors, InvalidArgument);
import_exception!(system0.errors, NotFound);
import_exception!(system0.errors, Unavailable);

/// Every failure the core can report. Messages say what was wrong, where, and what to do.
#[derive(Debug, Clone, PartialEq)]
pub enum CoreError {
    /// A value given by the caller is outside what the API accepts (maps to
    /// `InvalidArgument`, which is also a `ValueError`).
    InvalidArgument(String),
    /// Input data broke its contract.
    Validation(String),
    /// A metric family reached its label-set cap.
    Cardinality {
        metric: String,
        cap: usize,
    },
    Config(String),
    /// Backpressure: the caller should retry after `retry_after_s` seconds.
    Overloaded {
        message: String,
        depth: usize,
        retry_after_s: f64,
    },
    DeadlineExceeded(String),
    CircuitOpen {
        message: String,
        retry_after_s: f64,
    },
    /// The queue or stream was closed; no more items will be accepted.
    Closed(String),
    Integrity(String),
    AccessDenied(String),
    Crypto(String),
    /// The operating system refused a file operation; `kind` picks the exception (see `io`).
    Io {
        kind: ErrorKind,
        message: String,
    },
    /// A bug in system0 (a caught panic, a broken invariant); never the caller's fault.
    Internal(String),
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::InvalidArgument(m)
            | CoreError::Validation(m)
            | CoreError::Config(m)
            | CoreError::DeadlineExceeded(m)
            | CoreError::Closed(m)
            | CoreError::Integrity(m)
            | CoreError::AccessDenied(m)
            | CoreError::Crypto(m)
            | CoreError::Internal(m) => f.write_str(m),
            CoreError::Cardinality { metric, cap } => write!(
                f,
                "metric '{metric}' reached its cap of {cap} label sets; use fewer distinct label \
                 values (ids belong in spans or logs, not labels) or raise max_label_sets"
            ),
            CoreError::Overloaded { message, .. }
            | CoreError::CircuitOpen { message, .. }
            | CoreError::Io { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for CoreError {}

pub type CoreResult<T> = Result<T, CoreError>;

impl CoreError {
    /// A failed file operation: "could not {what} {path}: {e}" plus what to do, typed by the
    /// kind of failure, so a full disk or a missing file is never reported as tampering or
    /// a crypto fault.
    pub fn io(what: &str, path: &Path, e: &std::io::Error) -> CoreError {
        let hint = match e.kind() {
            ErrorKind::NotFound => "check the path",
            ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
                "check the permissions of the file and its directory"
            }
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge => {
                "free space on the device or move the data to a larger one"
            }
            _ => "check the device and retry",
        };
        CoreError::Io {
            kind: e.kind(),
            message: format!("could not {what} {}: {e}; {hint}", path.display()),
        }
    }
}

impl From<CoreError> for PyErr {
    fn from(e: CoreError) -> PyErr {
        let msg = e.to_string();
        match e {
            CoreError::InvalidArgument(_) => InvalidArgument::new_err(msg),
            CoreError::Validation(_) => ValidationError::new_err(msg),
            CoreError::Cardinality { metric, cap } => CardinalityError::new_err((msg, metric, cap)),
            CoreError::Config(_) => ConfigError::new_err(msg),
            CoreError::Overloaded {
                depth,
                retry_after_s,
                ..
            } => Overloaded::new_err((msg, depth, retry_after_s)),
            CoreError::DeadlineExceeded(_) => DeadlineExceeded::new_err(msg),
            CoreError::CircuitOpen { retry_after_s, .. } => {
                CircuitOpen::new_err((msg, retry_after_s))
            }
            CoreError::Closed(_) => Closed::new_err(msg),
            CoreError::Integrity(_) => IntegrityError::new_err(msg),
            CoreError::AccessDenied(_) => AccessDenied::new_err(msg),
            CoreError::Crypto(_) => CryptoError::new_err(msg),
            CoreError::Internal(_) => InternalError::new_err(msg),
            CoreError::Io { kind, .. } => match kind {
                ErrorKind::NotFound => NotFound::new_err(msg),
                ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
                    AccessDenied::new_err(msg)
                }
                // The storage could not take or give the bytes (full, quota, device error):
                // the write did not happen, which is what `Unavailable` promises.
                _ => Unavailable::new_err(msg),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_failures_keep_their_kind_and_say_what_to_do() {
        let p = Path::new("/data/ledger/seg-1.s0l");
        let full = std::io::Error::from(ErrorKind::StorageFull);
        match CoreError::io("write", p, &full) {
            CoreError::Io { kind, message } => {
                assert_eq!(kind, ErrorKind::StorageFull);
                assert!(message.starts_with("could not write /data/ledger/seg-1.s0l: "));
                assert!(
                    message.ends_with("free space on the device or move the data to a larger one")
                );
            }
            other => panic!("a full disk became {other:?}"),
        }
        let denied = std::io::Error::from(ErrorKind::PermissionDenied);
        assert!(matches!(
            CoreError::io("open", p, &denied),
            CoreError::Io {
                kind: ErrorKind::PermissionDenied,
                ..
            }
        ));
    }
}
