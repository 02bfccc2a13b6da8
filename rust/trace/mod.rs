//! Spans with causality: ids, the W3C `traceparent` header, whole-trace sampling, and the
//! collector that buffers finished spans per thread and hands them to a global, bounded buffer
//! in batches (the fastrace design). Pure Rust; `py.rs` binds it to Python, where the current
//! span travels in a `contextvars.ContextVar` so that it follows asyncio tasks and copied
//! contexts into threads.
//!
//! Memory is bounded: each thread holds at most `LOCAL_BATCH` finished spans, and the global
//! buffer at most `capacity()` spans; a batch that does not fit is cut and the excess counted
//! in `stats().dropped` (the newest spans are the ones dropped: a full buffer means nobody is
//! draining, and the oldest spans are the start of the story).

pub mod collector;
pub mod ids;
pub mod py;
pub mod py_attrs;
pub mod py_context;
pub mod py_contextvar;
pub mod py_finished;
pub mod record;
pub mod sampler;
pub mod traceparent;

pub use collector::{capacity, drain, flush_thread, set_capacity, stats, submit, Stats};
pub use ids::{new_span_id, new_trace_id};
pub use record::{AttrValue, Event, SpanRecord, Status};
pub use sampler::{sample_root, sampling, set_sampling};
pub use traceparent::{format_traceparent, parse_traceparent, TraceParent};
