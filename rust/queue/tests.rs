use super::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

fn q(cap: i64, policy: &str) -> Queue<u64> {
    Queue::new(Config::new("t", cap, policy).unwrap()).unwrap()
}

#[test]
fn bad_config_is_rejected() {
    assert!(Config::new("t", 0, "block").is_err());
    assert!(Config::new("t", -3, "block").is_err());
    assert!(Config::new("t", 4, "sideways").is_err());
}

#[test]
fn policies_on_a_full_queue() {
    let mut d = Vec::new();
    let r = q(2, "reject");
    assert!(matches!(r.put_nowait(1, 0, now()), Put::Accepted));
    assert!(matches!(r.put_nowait(2, 0, now()), Put::Accepted));
    assert!(matches!(r.put_nowait(3, 0, now()), Put::Full(3)));
    assert_eq!(r.stats().rejected, 1);

    let o = q(2, "drop_oldest");
    for i in 1..=3 {
        o.put_nowait(i, 0, now());
    }
    assert!(matches!(o.try_get(None, &mut d), Get::Item(2)));
    assert_eq!(o.stats().dropped_oldest, 1);

    let n = q(2, "drop_newest");
    for i in 1..=3 {
        n.put_nowait(i, 0, now());
    }
    assert!(matches!(n.try_get(None, &mut d), Get::Item(1)));
    assert!(matches!(n.try_get(None, &mut d), Get::Item(2)));
    assert_eq!(n.stats().dropped_newest, 1);
}

#[test]
fn expired_items_are_never_handed_out() {
    let mut d = Vec::new();
    let x = q(4, "block");
    let t = now();
    x.put_nowait(1, t + 1, t);
    x.put_nowait(2, 0, t);
    assert!(matches!(x.try_get(Some(t + 10), &mut d), Get::Item(2)));
    assert_eq!(d, vec![1]);
    assert_eq!(x.stats().expired_deadline, 1);
}

#[test]
fn close_drains_then_ends() {
    let mut d = Vec::new();
    let x = q(4, "block");
    x.put_nowait(7, 0, now());
    x.close();
    assert!(matches!(x.put_nowait(8, 0, now()), Put::Closed(8)));
    assert!(matches!(x.get(None, &mut d), Get::Item(7)));
    assert!(matches!(x.get(None, &mut d), Get::Closed));
}

#[test]
fn many_producers_and_consumers_lose_and_duplicate_nothing() {
    let x = Arc::new(q(8, "block"));
    let producers: Vec<_> = (0..4u64)
        .map(|p| {
            let x = x.clone();
            thread::spawn(move || {
                for i in 0..5000u64 {
                    assert!(matches!(x.put(p * 1_000_000 + i, 0, None), Put::Accepted));
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let x = x.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                let mut d = Vec::new();
                loop {
                    match x.get_many(16, None, true, &mut d) {
                        Some(v) => got.extend(v),
                        None => return got,
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    x.close();
    let mut seen: HashMap<u64, u32> = HashMap::new();
    for c in consumers {
        for v in c.join().unwrap() {
            *seen.entry(v).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 20_000);
    assert!(seen.values().all(|&c| c == 1));
}

#[test]
fn blocked_get_times_out_and_wakes_on_put() {
    let mut d = Vec::new();
    let x = Arc::new(q(1, "block"));
    let until = Instant::now() + Duration::from_millis(20);
    assert!(matches!(x.get(Some(until), &mut d), Get::Empty));
    let x2 = x.clone();
    let h = thread::spawn(move || {
        let mut d = Vec::new();
        matches!(x2.get(None, &mut d), Get::Item(5))
    });
    thread::sleep(Duration::from_millis(10));
    x.put_nowait(5, 0, now());
    assert!(h.join().unwrap());
}

#[test]
fn registry_series_follow_the_queue_and_add_up_per_name() {
    use crate::telemetry::default_registry;
    use crate::telemetry::Metric;
    let name = "rust-test-registry-series";
    let series = |fam: &str, labels: &[&str]| -> Metric {
        let f = default_registry()
            .families()
            .into_iter()
            .find(|f| f.name == fam)
            .unwrap();
        f.child(labels.iter().map(|s| s.to_string()).collect())
            .unwrap()
    };
    let count = |fam: &str, labels: &[&str]| match series(fam, labels) {
        Metric::Counter(c) => c.get(),
        _ => unreachable!(),
    };
    let x = Arc::new(Queue::<u64>::new(Config::new(name, 16, "block").unwrap()).unwrap());
    let y = Queue::<u64>::new(Config::new(name, 4, "drop_newest").unwrap()).unwrap();
    for i in 0..6 {
        y.put_nowait(i, 0, now());
    }
    let producers: Vec<_> = (0..3u64)
        .map(|p| {
            let x = x.clone();
            thread::spawn(move || {
                let mut d = Vec::new();
                for i in 0..1000u64 {
                    if i % 2 == 0 {
                        x.put(p * 10_000 + i, 0, None);
                    } else {
                        x.put_many(vec![i, i], 0, None, true, &mut d);
                    }
                }
            })
        })
        .collect();
    let x2 = x.clone();
    let consumer = thread::spawn(move || {
        let mut d = Vec::new();
        let mut got = 0usize;
        // Ends at end-of-stream (None), once the queue is closed and drained.
        while let Some(v) = x2.get_many(7, None, true, &mut d) {
            got += v.len();
        }
        got
    });
    for p in producers {
        p.join().unwrap();
    }
    x.close();
    assert_eq!(consumer.join().unwrap(), 4500);
    let (sx, sy) = (x.stats(), y.stats());
    assert_eq!((sx.enqueued, sx.dequeued, sx.depth), (4500, 4500, 0));
    assert_eq!((sy.enqueued, sy.dropped_newest, sy.depth), (4, 2, 4));
    assert_eq!(count("system0_queue_enqueued", &[name]), 4504);
    assert_eq!(count("system0_queue_dequeued", &[name]), 4500);
    assert_eq!(count("system0_queue_dropped", &[name, "newest"]), 2);
    assert_eq!(sx.sojourn.count, 4500);
    match series("system0_queue_depth", &[name]) {
        Metric::Gauge(g) => {
            assert_eq!(g.get(), 4.0);
            drop(y);
            assert_eq!(
                g.get(),
                0.0,
                "a dropped queue takes its items out of the depth"
            );
        }
        _ => unreachable!(),
    }
}
