//! The codec fast path: GameState / TrainingSample batches (JSON, NDJSON, msgpack) parsed
//! with simd-json, validated against the wire contract of `contract.rs`, and built into
//! columnar Arrow record batches; per-row errors keep reason codes and the raw bytes.

pub mod arrow_check;
pub mod arrow_export;
pub mod batch;
pub mod columns;
pub mod contract;
pub mod contract_py;
pub mod encode;
pub mod msgpack;
pub mod proto;
pub mod py;
pub mod read_columns;
pub mod tape_read;
pub mod validate;
pub mod validate_sample;

pub use batch::{decode_json, decode_rows, Contract, Decoded, RowError};

/// Decode a msgpack array of rows against `contract`.
pub fn decode_msgpack(data: &[u8], contract: Contract) -> Decoded {
    let (tape, elements, err) = msgpack::to_tape(data);
    let d = batch::decode_tape(&tape, &elements, data, contract);
    match err {
        None => d,
        Some((msg, range)) => batch::with_trailing_error(d, &data[range], "msgpack_invalid", msg),
    }
}

/// CRC-32C (Castagnoli; SSE 4.2 / ARMv8 instructions where present) of `data`.
pub fn checksum(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}
