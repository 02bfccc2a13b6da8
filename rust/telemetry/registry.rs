//! The registry: metric families by name, each with its label names and a cap on how many
//! distinct label sets it may hold. Lookup happens once, when a handle is made; recording
//! goes straight to the handle's atomics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use super::histogram::Histogram;
use super::metrics::{Counter, Gauge};
use crate::error::{CoreError, CoreResult};

/// Default cap on distinct label sets per family.
pub const DEFAULT_MAX_LABEL_SETS: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One labelled instance of a family.
#[derive(Clone)]
pub enum Metric {
    Counter(Arc<Counter>),
    Gauge(Arc<Gauge>),
    Histogram(Arc<Histogram>),
}

impl Metric {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Counter => Metric::Counter(Arc::new(Counter::new())),
            Kind::Gauge => Metric::Gauge(Arc::new(Gauge::new())),
            Kind::Histogram => Metric::Histogram(Arc::new(Histogram::new())),
        }
    }
}

#[derive(Default)]
struct Children {
    index: HashMap<Vec<String>, usize>,
    list: Vec<(Vec<String>, Metric)>,
}

/// A named metric with fixed label names; its children are the label sets seen so far.
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub unit: String,
    pub label_names: Vec<String>,
    pub max_label_sets: usize,
    children: Mutex<Children>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data intact; keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Family {
    /// The child for these label values (created on first use, up to the cap).
    pub fn child(&self, values: Vec<String>) -> CoreResult<Metric> {
        if values.len() != self.label_names.len() {
            return Err(CoreError::InvalidArgument(format!(
                "metric '{}' has labels ({}) but was given {} value(s); pass one value per \
                 label name",
                self.name,
                self.label_names.join(", "),
                values.len()
            )));
        }
        let mut c = lock(&self.children);
        if let Some(&i) = c.index.get(&values) {
            return Ok(c.list[i].1.clone());
        }
        if c.list.len() >= self.max_label_sets && !self.label_names.is_empty() {
            return Err(CoreError::Cardinality {
                metric: self.name.clone(),
                cap: self.max_label_sets,
            });
        }
        let m = Metric::new(self.kind);
        let i = c.list.len();
        c.list.push((values.clone(), m.clone()));
        c.index.insert(values, i);
        Ok(m)
    }

    /// Every child with its label values, sorted by label values (a stable export order).
    pub fn children(&self) -> Vec<(Vec<String>, Metric)> {
        let mut v = lock(&self.children).list.clone();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// Checks a metric name against the Prometheus data model: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn validate_metric_name(name: &str) -> CoreResult<()> {
    let ok = !name.is_empty()
        && name.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(CoreError::Validation(format!(
            "metric name {name:?} is not a valid Prometheus name: use letters, digits, '_' and \
             ':' only, not starting with a digit (e.g. 'inference_latency_ns')"
        )))
    }
}

/// Checks label names: `[a-zA-Z_][a-zA-Z0-9_]*`, not `__`-prefixed (reserved), unique, and
/// not `le` on a histogram (its bucket label).
pub fn validate_label_names(metric: &str, kind: Kind, labels: &[String]) -> CoreResult<()> {
    for (k, l) in labels.iter().enumerate() {
        let ok = !l.is_empty()
            && l.chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()));
        let why = if !ok {
            "use letters, digits and '_' only, not starting with a digit"
        } else if l.starts_with("__") {
            "names starting with '__' are reserved by Prometheus"
        } else if labels[..k].contains(l) {
            "it appears twice"
        } else if kind == Kind::Histogram && l == "le" {
            "'le' is the bucket label of histogram exports"
        } else {
            continue;
        };
        return Err(CoreError::Validation(format!(
            "label name {l:?} of metric '{metric}' is not valid: {why}"
        )));
    }
    Ok(())
}

/// A set of metric families. Most programs use `default_registry()`; tests make their own.
#[derive(Default)]
pub struct Registry {
    families: Mutex<HashMap<String, Arc<Family>>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the family `name`, creating it on first use. Registering the same name again
    /// with the same kind, labels and unit returns the same family; anything else is a
    /// `ConfigError`.
    pub fn register(
        &self,
        name: &str,
        kind: Kind,
        label_names: Vec<String>,
        help: &str,
        unit: &str,
        max_label_sets: usize,
    ) -> CoreResult<Arc<Family>> {
        validate_metric_name(name)?;
        validate_label_names(name, kind, &label_names)?;
        if max_label_sets == 0 {
            return Err(CoreError::InvalidArgument(format!(
                "metric '{name}': max_label_sets must be at least 1"
            )));
        }
        let mut fams = lock(&self.families);
        if let Some(f) = fams.get(name) {
            if f.kind != kind || f.label_names != label_names || f.unit != unit {
                return Err(CoreError::Config(format!(
                    "metric '{name}' is already registered as a {} with labels ({}) and unit \
                     {:?}; it was asked for again as a {} with labels ({}) and unit {:?}. Use \
                     one definition per name, or pick another name",
                    f.kind.as_str(),
                    f.label_names.join(", "),
                    f.unit,
                    kind.as_str(),
                    label_names.join(", "),
                    unit
                )));
            }
            return Ok(Arc::clone(f));
        }
        let fam = Arc::new(Family {
            name: name.to_owned(),
            help: help.to_owned(),
            kind,
            unit: unit.to_owned(),
            label_names,
            max_label_sets,
            children: Mutex::new(Children::default()),
        });
        if fam.label_names.is_empty() {
            fam.child(Vec::new())?;
        }
        fams.insert(name.to_owned(), Arc::clone(&fam));
        Ok(fam)
    }

    /// Every family, sorted by name.
    pub fn families(&self) -> Vec<Arc<Family>> {
        let mut v: Vec<_> = lock(&self.families).values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}

/// The process-wide registry that `counter(...)`, `gauge(...)` and `histogram(...)` use.
pub fn default_registry() -> &'static Arc<Registry> {
    static R: OnceLock<Arc<Registry>> = OnceLock::new();
    R.get_or_init(|| Arc::new(Registry::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_definition_same_family_else_error() {
        let r = Registry::new();
        let a = r
            .register("x_total", Kind::Counter, vec!["m".into()], "", "", 10)
            .unwrap();
        let b = r
            .register("x_total", Kind::Counter, vec!["m".into()], "", "", 10)
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(matches!(
            r.register("x_total", Kind::Gauge, vec!["m".into()], "", "", 10),
            Err(CoreError::Config(_))
        ));
        assert!(matches!(
            r.register("x_total", Kind::Counter, vec![], "", "", 10),
            Err(CoreError::Config(_))
        ));
    }

    #[test]
    fn cap_and_names() {
        let r = Registry::new();
        let f = r
            .register("h", Kind::Histogram, vec!["m".into()], "", "ns", 2)
            .unwrap();
        f.child(vec!["a".into()]).unwrap();
        f.child(vec!["b".into()]).unwrap();
        f.child(vec!["a".into()]).unwrap();
        assert!(matches!(
            f.child(vec!["c".into()]),
            Err(CoreError::Cardinality { cap: 2, .. })
        ));
        for bad in ["", "1x", "a-b", "a b", "é"] {
            assert!(validate_metric_name(bad).is_err(), "{bad}");
        }
        assert!(validate_metric_name("a:b_c9").is_ok());
        let bad_labels = [
            vec!["__x".to_string()],
            vec!["le".into()],
            vec!["a".into(), "a".into()],
        ];
        for l in bad_labels {
            assert!(validate_label_names("h", Kind::Histogram, &l).is_err());
        }
    }
}
