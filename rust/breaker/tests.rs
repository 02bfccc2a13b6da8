use super::*;
use std::sync::Arc;
use std::thread;

const MS: u64 = 1_000_000;

fn cfg() -> Config {
    Config {
        name: "t".into(),
        window_calls: Some(4),
        window_ns: 0,
        window_buckets: 10,
        minimum_calls: 4,
        failure_rate: 0.5,
        slow_call_ns: 0,
        slow_call_rate: 1.0,
        wait_ns: 100 * MS,
        max_wait_ns: 1_000 * MS,
        backoff: 2.0,
        jitter: 0.0,
        half_open_permits: 2,
        max_half_open_ns: 500 * MS,
        seed: 7,
    }
}

fn call(b: &Breaker, ok: bool, now: u64) -> Result<Option<Transition>, f64> {
    let mut tr = None;
    let p = b.acquire(now, &mut tr)?;
    let r = b.record(
        p,
        if ok {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        now,
    );
    Ok(r.or(tr))
}

#[test]
fn closed_opens_at_threshold_after_minimum_calls() {
    let b = Breaker::new(cfg()).unwrap();
    assert!(call(&b, false, 0).unwrap().is_none());
    assert!(call(&b, false, 0).unwrap().is_none());
    assert!(call(&b, true, 0).unwrap().is_none());
    let t = call(&b, true, 0).unwrap().expect("2/4 failures trips 50%");
    assert_eq!((t.from, t.to), (State::Closed, State::Open));
    let retry = call(&b, true, 10 * MS).unwrap_err();
    assert!((retry - 0.09).abs() < 1e-9);
}

#[test]
fn half_open_permits_then_close_or_reopen_with_backoff() {
    let b = Breaker::new(cfg()).unwrap();
    for _ in 0..4 {
        let _ = call(&b, false, 0);
    }
    assert_eq!(b.state(), State::Open);
    let mut tr = None;
    let p1 = b.acquire(100 * MS, &mut tr).unwrap();
    assert_eq!(tr.unwrap().to, State::HalfOpen);
    let p2 = b.acquire(100 * MS, &mut None).unwrap();
    assert!(b.acquire(100 * MS, &mut None).is_err(), "only 2 permits");
    assert!(b.record(p1, Outcome::Failure, 101 * MS).is_none());
    let t = b.record(p2, Outcome::Success, 101 * MS).unwrap();
    assert_eq!(t.to, State::Open, "1/2 failed >= 50%");
    // second opening waits 2x as long
    assert!(b.acquire(101 * MS + 199 * MS, &mut None).is_err());
    let p = b.acquire(101 * MS + 200 * MS, &mut None).unwrap();
    let p2 = b.acquire(101 * MS + 200 * MS, &mut None).unwrap();
    b.record(p, Outcome::Success, 302 * MS);
    let t = b.record(p2, Outcome::Success, 302 * MS).unwrap();
    assert_eq!(t.to, State::Closed);
}

#[test]
fn half_open_cannot_stick() {
    let b = Breaker::new(cfg()).unwrap();
    b.force(State::Open, 0);
    let _p = b.acquire(100 * MS, &mut None).unwrap(); // a probe that never reports
    let mut tr = None;
    assert!(b.acquire(600 * MS, &mut tr).is_err());
    assert_eq!(tr.unwrap().to, State::Open);
}

#[test]
fn concurrent_probes_get_exactly_the_permits() {
    let b = Arc::new(Breaker::new(cfg()).unwrap());
    b.force(State::Open, 0);
    b.poll(100 * MS);
    let hs: Vec<_> = (0..8)
        .map(|_| {
            let b = b.clone();
            thread::spawn(move || b.acquire(100 * MS, &mut None).is_ok())
        })
        .collect();
    let granted = hs
        .into_iter()
        .filter(|_| true)
        .map(|h| h.join().unwrap())
        .filter(|&x| x)
        .count();
    assert_eq!(granted, 2);
}

#[test]
fn jitter_is_deterministic_for_a_seed() {
    let mk = || {
        let b = Breaker::new(Config {
            jitter: 0.5,
            ..cfg()
        })
        .unwrap();
        b.force(State::Open, 0);
        b.stats(0).open_remaining_ns
    };
    assert_eq!(mk(), mk());
    let w = mk();
    assert!((50 * MS..=150 * MS).contains(&w));
}
