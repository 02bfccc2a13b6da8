//! The Prometheus text exposition format (version 0.0.4).
//!
//! Histograms export a fixed set of `le` boundaries, the 1-2-5 series from 1 to 2e12 units
//! (1 ns to 33 min when the unit is ns) and `+Inf`: the same boundaries for every histogram
//! and every scrape, as Prometheus needs to aggregate. Each boundary counts the HDR buckets
//! that start at or below it: every value <= `le` is counted, as Prometheus defines `le`
//! (exact below 2048 units), plus values at most 0.1 % (2^-10) above `le` that share its
//! HDR bucket.

use std::fmt::Write;

use super::registry::{Family, Kind, Metric, Registry};

/// The exported `le` boundaries (in the histogram's unit), ascending.
pub fn le_bounds() -> Vec<u64> {
    let mut v = Vec::new();
    let mut decade = 1u64;
    while decade <= super::histogram::MAX_VALUE {
        for m in [1, 2, 5] {
            let b = decade * m;
            if b <= super::histogram::MAX_VALUE {
                v.push(b);
            }
        }
        decade *= 10;
    }
    v
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('"', "\\\"")
}

/// `{a="x",b="y"}` (plus an optional extra pair), or "" when there is nothing to show.
fn labels(names: &[String], values: &[String], extra: Option<(&str, &str)>) -> String {
    let mut pairs: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape_label(v)))
        .collect();
    if let Some((n, v)) = extra {
        pairs.push(format!("{n}=\"{v}\""));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

/// The name a family is announced under (`# HELP`/`# TYPE`): counters carry `_total`, as
/// prometheus_client writes them, whether or not the registered name ends with it.
pub fn family_name(f: &Family) -> String {
    match f.kind {
        Kind::Counter => format!("{}_total", f.name.strip_suffix("_total").unwrap_or(&f.name)),
        _ => f.name.clone(),
    }
}

fn render_family(out: &mut String, f: &Family, bounds: &[u64]) {
    let base = family_name(f);
    let base = base.as_str();
    if !f.help.is_empty() {
        let _ = writeln!(out, "# HELP {base} {}", escape_help(&f.help));
    }
    let _ = writeln!(out, "# TYPE {base} {}", f.kind.as_str());
    for (values, m) in f.children() {
        match m {
            Metric::Counter(c) => {
                let l = labels(&f.label_names, &values, None);
                let _ = writeln!(out, "{base}{l} {}", c.get());
            }
            Metric::Gauge(g) => {
                let l = labels(&f.label_names, &values, None);
                let _ = writeln!(out, "{base}{l} {:?}", g.get());
            }
            Metric::Histogram(h) => {
                let s = h.snapshot();
                for &b in bounds {
                    let le = b.to_string();
                    let l = labels(&f.label_names, &values, Some(("le", &le)));
                    let _ = writeln!(out, "{base}_bucket{l} {}", s.count_le(b));
                }
                let l = labels(&f.label_names, &values, Some(("le", "+Inf")));
                let _ = writeln!(out, "{base}_bucket{l} {}", s.count);
                let l = labels(&f.label_names, &values, None);
                let _ = writeln!(out, "{base}_sum{l} {}", s.sum);
                let _ = writeln!(out, "{base}_count{l} {}", s.count);
            }
        }
    }
}

/// Every family of `registry`, sorted by name, in the text exposition format.
pub fn render(registry: &Registry) -> String {
    let bounds = le_bounds();
    let mut out = String::new();
    for f in registry.families() {
        render_family(&mut out, &f, &bounds);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_each_kind() {
        let r = Registry::new();
        let c = r
            .register(
                "req_total",
                Kind::Counter,
                vec!["m".into()],
                "Requests\nserved",
                "",
                9,
            )
            .unwrap();
        if let Metric::Counter(c) = c.child(vec!["a\"b".into()]).unwrap() {
            c.inc(3);
        }
        let h = r
            .register("lat_ns", Kind::Histogram, vec![], "", "ns", 9)
            .unwrap();
        if let Metric::Histogram(h) = h.child(vec![]).unwrap() {
            h.record(3);
            h.record(3000);
        }
        let text = render(&r);
        assert!(text.contains("# HELP req_total Requests\\nserved\n# TYPE req_total counter\n"));
        assert!(text.contains("req_total{m=\"a\\\"b\"} 3\n"));
        assert!(text.contains("lat_ns_bucket{le=\"2\"} 0\n"));
        assert!(text.contains("lat_ns_bucket{le=\"5\"} 1\n"));
        assert!(text.contains("lat_ns_bucket{le=\"5000\"} 2\n"));
        assert!(text.contains("lat_ns_bucket{le=\"+Inf\"} 2\nlat_ns_sum 3003\nlat_ns_count 2\n"));
        assert_eq!(le_bounds().len(), 38);
    }
}
