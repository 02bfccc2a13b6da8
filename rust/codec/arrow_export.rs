//! Arrow C Data Interface export with one metadata order.
//!
//! arrow-rs writes a schema's metadata in `HashMap` order, which differs from one map to the
//! next and from one process to the next. A consumer that hashes the exported schema (storage
//! names a layout by the SHA-256 of its IPC form) would then see two layouts for the one
//! contract. Every schema the codec hands out goes through here and carries its metadata
//! sorted by key.

use std::collections::BTreeMap;
use std::ffi::c_int;
use std::sync::OnceLock;

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_schema::ffi::FFI_ArrowSchema;
use arrow_schema::{ArrowError, DataType, Schema};

/// `schema` as a C schema whose metadata is in key order.
pub fn export_schema(schema: &Schema) -> Result<FFI_ArrowSchema, ArrowError> {
    let sorted: BTreeMap<&String, &String> = schema.metadata().iter().collect();
    FFI_ArrowSchema::try_from(&DataType::Struct(schema.fields().clone()))?.with_metadata(sorted)
}

type GetSchema = unsafe extern "C" fn(*mut FFI_ArrowArrayStream, *mut FFI_ArrowSchema) -> c_int;

/// arrow-rs's own `get_schema` callback (one function for every stream it exports).
static ARROW_GET_SCHEMA: OnceLock<GetSchema> = OnceLock::new();

/// `get_schema` of a stream made by `sorted_stream`: arrow-rs's export, re-exported sorted.
unsafe extern "C" fn sorted_get_schema(
    stream: *mut FFI_ArrowArrayStream,
    out: *mut FFI_ArrowSchema,
) -> c_int {
    let Some(inner) = ARROW_GET_SCHEMA.get() else {
        return EIO;
    };
    // SAFETY: `stream` is a stream arrow-rs exported (sorted_stream installs this callback
    // only there) and `out` is the caller's schema slot, as the C stream interface promises.
    unsafe {
        let rc = inner(stream, out);
        if rc != 0 {
            return rc;
        }
        let exported = std::ptr::replace(out, FFI_ArrowSchema::empty());
        match Schema::try_from(&exported).and_then(|s| export_schema(&s)) {
            Ok(sorted) => std::ptr::write(out, sorted),
            Err(_) => std::ptr::write(out, exported), // keep arrow's valid export as it was
        }
    }
    0
}

/// The C stream interface reports errors as errno values.
const EIO: c_int = 5;

/// Make `stream` export its schema with sorted metadata (arrays need nothing: only the
/// top-level schema carries metadata).
pub fn sorted_stream(mut stream: FFI_ArrowArrayStream) -> FFI_ArrowArrayStream {
    if let Some(f) = stream.get_schema {
        let inner = *ARROW_GET_SCHEMA.get_or_init(|| f);
        if inner as usize == f as usize {
            stream.get_schema = Some(sorted_get_schema);
        }
    }
    stream
}
