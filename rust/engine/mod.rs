//! The inference engine's hot path: admission, the bounded request queue, deadlines, batch
//! gathering (max batch, max wait, bucket padding), answer slots, outcome counters,
//! histograms and spans, all without the GIL. Python is entered once per batch, by the
//! thread that runs the model (see `py.rs` and `system0.interfaces.inference_engine`).
//!
//! Pure Rust: the answer type and the done-callback type are parameters (`Answer`, `C`), so
//! the Python binding stores Python objects in them and the unit tests store plain values.
//!
//! A request's life: `Engine::submit` checks admission (the predicted wait, from the moving
//! estimate of a batch's model time, against `budget * headroom`) and queues it with its
//! answer slot; `Engine::next_batch` takes the first request and gathers company for at most
//! `max_wait`; `Gathered::open` answers the requests whose deadline leaves no room for the
//! model with `DeadlineExceeded` and lays the rest out as one padded row-major matrix; the
//! model's outputs come back through `outputs::scan` (finite check and argmax); `Gathered`
//! settles every slot exactly once (result or error), and `Engine::close` answers whatever is
//! still queued with `Closed`.

pub mod batch;
pub mod core;
pub mod estimate;
pub mod metrics;
pub mod outputs;
pub mod py;
pub mod slot;
pub mod spans;
#[cfg(test)]
mod tests;

pub use self::batch::{Gathered, Pending};
pub use self::core::{Config, Engine};
pub use self::estimate::Estimate;
pub use self::slot::{Answer, Slot};
