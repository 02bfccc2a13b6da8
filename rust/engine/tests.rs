//! The engine core without Python: answers are plain values, callbacks are numbers.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::core::Next;
use super::outputs::{scan, Refused};
use super::spans::BatchFacts;
use super::*;
use crate::error::CoreError;

#[derive(Debug, PartialEq)]
enum A {
    Row(usize),
    Err(String),
    Cancelled,
}

impl Answer for A {
    fn error(e: CoreError) -> Self {
        A::Err(e.to_string())
    }
    fn cancelled() -> Self {
        A::Cancelled
    }
}

static NAMES: AtomicU64 = AtomicU64::new(0);

fn engine(max_batch: usize, capacity: usize, buckets: Vec<usize>) -> Engine<A, u32> {
    let n = NAMES.fetch_add(1, Relaxed);
    Engine::new(Config {
        name: format!("rust-test-{n}"),
        width: 2,
        max_batch,
        max_wait_ns: 0,
        buckets,
        capacity,
        headroom: 0.9,
    })
    .unwrap()
}

fn row(v: f32) -> Box<[f32]> {
    vec![v, -v].into_boxed_slice()
}

fn queue(e: &Engine<A, u32>, v: f32, now: u64, budget: u64) -> Arc<Slot<A, u32>> {
    e.admit(1, budget).unwrap();
    e.enqueue(e.pending(row(v), now, budget, None)).unwrap()
}

fn take(e: &Engine<A, u32>) -> Gathered<A, u32> {
    match e.next_batch(Some(Instant::now() + Duration::from_millis(50))) {
        Next::Batch(g) => g,
        _ => panic!("no batch"),
    }
}

#[test]
fn a_slot_is_answered_once_and_runs_its_callbacks_once() {
    let s: Slot<A, u32> = Slot::new();
    assert!(s.add_callback(1).is_none());
    assert_eq!(s.settle(A::Row(0)).unwrap(), vec![1]);
    assert_eq!(s.settle(A::Row(1)).unwrap_err(), A::Row(1));
    assert_eq!(s.add_callback(2), Some(2)); // already done: run it now
    assert_eq!(s.with_answer(|a| matches!(a, A::Row(0))), Some(true));
    assert!(s.wait(Some(Instant::now())));
}

#[test]
fn cancel_succeeds_only_while_queued() {
    let s: Slot<A, u32> = Slot::new();
    assert!(s.cancel().is_some() && s.is_cancelled());
    assert!(!s.start(), "a cancelled request is left out of its batch");
    let r: Slot<A, u32> = Slot::new();
    assert!(r.start() && r.is_running());
    assert!(r.cancel().is_none());
    assert!(r.settle(A::Row(3)).is_ok());
}

#[test]
fn the_estimate_moves_slowly_on_a_stall_and_predicts_waits() {
    let e = Estimate::default();
    e.learn(1000);
    assert_eq!(e.get(), 1000.0);
    e.learn(1_000_000); // a stall counts as at most 4x
    assert_eq!(e.get(), 0.8 * 1000.0 + 0.2 * 4000.0);
    e.set(5.0);
    assert_eq!(e.expected_wait_ns(0, 4, 7), 5.0 + 7.0);
    assert_eq!(e.expected_wait_ns(3, 4, 7), 5.0);
    assert_eq!(e.expected_wait_ns(8, 4, 7), 15.0);
}

#[test]
fn scan_takes_the_first_max_and_refuses_nan_in_real_rows_only() {
    let out = [0.1, 0.7, 0.7, 0.9, 0.0, 0.0, f32::NAN, 1.0, 0.0];
    assert_eq!(scan(&out, 3, 2).unwrap(), vec![1, 0]);
    assert_eq!(scan(&out, 3, 3), Err(Refused::NonFinite { row: 2 }));
    assert!(matches!(
        scan(&out, 3, 4),
        Err(Refused::Shape { rows: 3, .. })
    ));
    assert!(matches!(scan(&out, 0, 1), Err(Refused::Shape { .. })));
}

#[test]
fn config_pads_to_the_next_bucket_and_refuses_absurd_settings() {
    let e = engine(8, 16, vec![1, 4, 8]);
    assert_eq!(e.cfg.padded(3, false), 4);
    assert_eq!(e.cfg.padded(1, true), 1);
    let e = engine(8, 16, vec![]);
    assert_eq!(e.cfg.padded(5, false), 5);
    let mut bad = e.cfg.clone();
    bad.buckets = vec![1, 2];
    assert!(bad.check().is_err());
    bad.buckets = vec![];
    bad.headroom = 0.0;
    assert!(bad.check().is_err());
}

#[test]
fn a_batch_runs_padded_and_answers_each_row_with_its_own() {
    let e = engine(4, 16, vec![4]);
    let slots: Vec<_> = (0..3)
        .map(|i| queue(&e, i as f32, 100, 1_000_000))
        .collect();
    let mut g = take(&e);
    assert!(g.open(&e, 100).is_empty());
    assert_eq!((g.rows(), g.padded), (3, 4));
    assert_eq!(&g.matrix[..6], &[0.0, -0.0, 1.0, -1.0, 2.0, -2.0]);
    assert!(g.matrix[6..].iter().all(|&v| v == 0.0));
    assert!(!e.is_idle(), "a running batch counts as busy");
    let cbs = g.finish(
        &e,
        100,
        200,
        50,
        BatchFacts::default(),
        |row, wait, total| {
            assert_eq!((wait, total), (0, 100));
            A::Row(row)
        },
    );
    assert!(cbs.is_empty() && e.is_idle());
    for (i, s) in slots.iter().enumerate() {
        assert_eq!(
            s.with_answer(|a| matches!(a, A::Row(r) if *r == i)),
            Some(true)
        );
    }
    let t = e.metrics.tally();
    assert_eq!((t.submitted, t.completed, t.batches), (3, 3, 1));
    assert_eq!(t.batch_sizes, vec![(3, 1)]);
    assert_eq!(e.est.get(), 50.0);
}

#[test]
fn a_request_past_its_deadline_is_answered_and_never_run() {
    let e = engine(4, 16, vec![]);
    let late = queue(&e, 1.0, 0, 10);
    let ok = queue(&e, 2.0, 0, 1_000_000);
    let mut g = take(&e);
    g.open(&e, 50);
    assert_eq!(g.rows(), 1);
    assert_eq!(g.matrix, vec![2.0, -2.0]);
    let said = late.with_answer(|a| matches!(a, A::Err(m) if m.contains("deadline passed")));
    assert_eq!(said, Some(true));
    g.fail(&e, "boom", || A::Err("boom".into()));
    assert_eq!(ok.with_answer(|a| matches!(a, A::Err(_))), Some(true));
    let t = e.metrics.tally();
    assert_eq!((t.deadline_exceeded, t.failed), (1, 1));
}

#[test]
fn admission_refuses_when_the_expected_wait_exceeds_the_budget() {
    let e = engine(2, 16, vec![]);
    e.est.set(5_000_000.0);
    for _ in 0..4 {
        queue(&e, 0.0, 0, 1_000_000_000);
    }
    let err = e.admit(1, 12_000_000).unwrap_err();
    match err {
        CoreError::Overloaded {
            depth,
            retry_after_s,
            ..
        } => assert!(depth == 4 && retry_after_s >= 0.012),
        other => panic!("{other:?}"),
    }
    let many = e.admit(3, 1_000_000_000);
    assert!(many.is_ok());
    assert!(e
        .admit(8, 20_000_000)
        .unwrap_err()
        .to_string()
        .contains("last of 8"));
    assert_eq!(e.metrics.tally().rejected_overloaded, 9);
}

#[test]
fn a_full_queue_answers_what_it_cannot_take() {
    let e = engine(1, 2, vec![]);
    let ps = (0..5)
        .map(|i| e.pending(row(i as f32), 0, 1_000, None))
        .collect();
    let (slots, _) = e.enqueue_many(ps);
    assert_eq!(slots.len(), 5);
    assert!(slots[..2].iter().all(|s| !s.is_done()));
    assert!(slots[2..].iter().all(|s| s
        .with_answer(|a| matches!(a, A::Err(m) if m.contains("3 of 5")))
        .unwrap_or(false)));
    assert!(e.enqueue(e.pending(row(9.0), 0, 1_000, None)).is_err());
    assert_eq!(e.metrics.tally().rejected_overloaded, 4);
}

#[test]
fn abandon_answers_everything_queued_or_running_with_closed() {
    let e = engine(1, 8, vec![]);
    let running = queue(&e, 0.0, 0, 1_000_000);
    let queued = queue(&e, 1.0, 0, 1_000_000);
    let mut g = take(&e);
    g.open(&e, 0);
    e.close();
    assert!(e.check_open().is_err());
    e.abandon();
    for s in [&running, &queued] {
        assert_eq!(
            s.with_answer(|a| matches!(a, A::Err(m) if m.contains("closed"))),
            Some(true)
        );
    }
    // the model's late answer is refused by the slot: still exactly one answer
    g.finish(&e, 0, 1, 1, BatchFacts::default(), |r, _, _| A::Row(r));
    assert_eq!(running.with_answer(|a| matches!(a, A::Err(_))), Some(true));
    assert!(matches!(e.next_batch(Some(Instant::now())), Next::Closed));
}

#[test]
fn many_threads_get_every_answer_exactly_once() {
    let e = Arc::new(engine(8, 4096, vec![]));
    let answered = Arc::new(AtomicU64::new(0));
    let worker = {
        let e = e.clone();
        std::thread::spawn(move || loop {
            match e.next_batch(Some(Instant::now() + Duration::from_millis(20))) {
                Next::Batch(mut g) => {
                    g.open(&e, 0);
                    g.finish(&e, 0, 0, 1, BatchFacts::default(), |r, _, _| A::Row(r));
                }
                Next::Idle => {}
                Next::Closed => return,
            }
        })
    };
    let producers: Vec<_> = (0..4)
        .map(|_| {
            let e = e.clone();
            let answered = answered.clone();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    let s = queue(&e, 1.0, 0, u64::MAX / 4);
                    assert!(s.wait(Some(Instant::now() + Duration::from_secs(10))));
                    answered.fetch_add(1, Relaxed);
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    e.close();
    worker.join().unwrap();
    assert_eq!(answered.load(Relaxed), 800);
    assert_eq!(e.metrics.tally().completed, 800);
}
