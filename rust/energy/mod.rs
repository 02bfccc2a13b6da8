//! Energy and CPU counters for spans and timers: every joule accountable, none invented.
//!
//! A [`Meter`] discovers what the machine exposes once (RAPL zones through powercap, NVIDIA
//! GPUs through NVML) and keeps their counters open. [`Meter::snapshot`] reads them, plus the
//! calling thread's cycles and instructions (perf events); [`Snapshot::since`] subtracts two
//! snapshots into a [`Delta`]. A source that cannot be read yields a reason starting with
//! "not available: ", never a number.

pub mod nvml;
pub mod perf;
pub mod py;
pub mod rapl;
pub mod sampler;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::error::{CoreError, CoreResult};

/// Which sources a meter reads.
#[derive(Debug, Clone)]
pub struct MeterConfig<'a> {
    /// powercap root, normally [`rapl::DEFAULT_ROOT`]; `None` skips RAPL.
    pub powercap_root: Option<&'a Path>,
    /// NVML library, normally [`nvml::DEFAULT_LIBRARY`]; `None` skips NVML.
    pub nvml_library: Option<&'a str>,
    /// Whether to read the calling thread's cycles and instructions.
    pub perf: bool,
}

/// What one source offers: a name, whether it can be read, and why not.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceStatus {
    pub source: &'static str,
    pub available: bool,
    /// "not available: ..." when not available.
    pub reason: Option<String>,
    /// Domains it reports (`cpu_package_0`, `gpu_0`, or `cycles`/`instructions`).
    pub domains: Vec<String>,
}

/// Discovered energy sources with their counters held open.
#[derive(Debug)]
pub struct Meter {
    rapl: rapl::RaplReader,
    nvml: nvml::NvmlReader,
    /// `Some(reason)` when perf was switched off in the config.
    perf_off: Option<&'static str>,
}

impl Meter {
    /// Discovers the sources in `config`. Never fails: absent sources carry reasons.
    pub fn open(config: &MeterConfig<'_>) -> Meter {
        let rapl = match config.powercap_root {
            Some(root) => rapl::RaplReader::open(root),
            None => rapl::RaplReader {
                domains: Vec::new(),
                reason: Some("not available: RAPL reading switched off".to_owned()),
            },
        };
        let nvml = match config.nvml_library {
            Some(lib) => nvml::NvmlReader::open(lib),
            None => {
                nvml::NvmlReader::unavailable("not available: NVML reading switched off".to_owned())
            }
        };
        Meter {
            rapl,
            nvml,
            perf_off: (!config.perf).then_some("not available: perf counters switched off"),
        }
    }

    /// Energy domains in report order: RAPL zones, then GPUs.
    pub fn domain_names(&self) -> impl Iterator<Item = &str> {
        self.rapl
            .domains
            .iter()
            .map(|d| d.name.as_str())
            .chain(self.nvml.gpus.iter().map(|g| g.name.as_str()))
    }

    /// What each source offers on this machine. Probes perf on the calling thread.
    pub fn sources(&self) -> Vec<SourceStatus> {
        let perf = match self.perf_off {
            Some(off) => Err(Arc::from(off)),
            None => perf::read_thread().map(|_| ()),
        };
        vec![
            SourceStatus {
                source: "rapl",
                available: self.rapl.reason.is_none(),
                reason: self.rapl.reason.clone(),
                domains: self.rapl.domains.iter().map(|d| d.name.clone()).collect(),
            },
            SourceStatus {
                source: "nvml",
                available: self.nvml.reason.is_none(),
                reason: self.nvml.reason.clone(),
                domains: self.nvml.gpus.iter().map(|g| g.name.clone()).collect(),
            },
            SourceStatus {
                source: "perf",
                available: perf.is_ok(),
                reason: perf.err().map(|r| r.to_string()),
                domains: vec!["cycles".to_owned(), "instructions".to_owned()],
            },
        ]
    }

    /// Reads the counters now. `energy`/`cpu` pick what to read (each costs syscalls: one
    /// `pread` per RAPL domain, NVML's latest background sample, one `read` for the perf group).
    pub fn snapshot(self: &Arc<Self>, energy: bool, cpu: bool) -> Snapshot {
        let energy_uj = energy.then(|| {
            self.rapl
                .domains
                .iter()
                .map(|d| d.read_uj())
                .chain(self.nvml.read_all_uj())
                .collect()
        });
        let cpu = cpu.then(|| self.read_cpu());
        Snapshot {
            meter: Arc::clone(self),
            t_ns: crate::clock::now_ns(),
            energy_uj,
            cpu,
        }
    }

    fn read_cpu(&self) -> Result<perf::CpuReading, Arc<str>> {
        match self.perf_off {
            Some(off) => Err(Arc::from(off)),
            None => perf::read_thread(),
        }
    }
}

/// The process-wide meter over the real machine (default powercap root, the driver's NVML,
/// perf on): discovered on first use, shared by Rust spans and Python alike so that their
/// snapshots subtract.
pub fn default_meter() -> &'static Arc<Meter> {
    static DEFAULT: std::sync::OnceLock<Arc<Meter>> = std::sync::OnceLock::new();
    DEFAULT.get_or_init(|| {
        Arc::new(Meter::open(&MeterConfig {
            powercap_root: Some(Path::new(rapl::DEFAULT_ROOT)),
            nvml_library: Some(nvml::DEFAULT_LIBRARY),
            perf: true,
        }))
    })
}

/// Counter readings at one instant, tied to the meter (and thread) that took them.
#[derive(Debug, Clone)]
pub struct Snapshot {
    meter: Arc<Meter>,
    pub t_ns: u64,
    /// Per domain, in `Meter::domain_names` order; `None` when energy was not asked for.
    energy_uj: Option<Vec<Result<u64, Arc<str>>>>,
    cpu: Option<Result<perf::CpuReading, Arc<str>>>,
}

/// What happened between two snapshots.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub duration_ns: u64,
    /// Whether energy was read at both ends.
    pub energy_read: bool,
    /// Joules per readable domain (RAPL zones, GPUs), in report order.
    pub joules: Vec<(String, f64)>,
    /// Sum over disjoint readable domains (packages, DRAM, GPUs); `None` when none was read.
    pub total_joules: Option<f64>,
    /// Whether cycles/instructions were read at both ends.
    pub cpu_read: bool,
    pub cycles: Option<u64>,
    pub instructions: Option<u64>,
    /// Per source read at both ends (`rapl`, `nvml`, `perf`): whether it gave a figure.
    pub available: Vec<(&'static str, bool)>,
    /// Per source (`rapl`, `nvml`, `perf`) and per unreadable domain: "not available: ...".
    pub reasons: BTreeMap<String, String>,
}

impl Snapshot {
    /// The counters' growth from `start` to `self`.
    pub fn since(&self, start: &Snapshot) -> CoreResult<Delta> {
        if !Arc::ptr_eq(&self.meter, &start.meter) {
            return Err(CoreError::InvalidArgument(
                "energy snapshots come from two different meters; subtract snapshots taken \
                 with the same EnergyMeter"
                    .to_owned(),
            ));
        }
        let m = &*self.meter;
        let mut d = Delta {
            duration_ns: self.t_ns.saturating_sub(start.t_ns),
            energy_read: false,
            joules: Vec::new(),
            total_joules: None,
            cpu_read: false,
            cycles: None,
            instructions: None,
            available: Vec::new(),
            reasons: BTreeMap::new(),
        };
        if let (Some(end), Some(begin)) = (&self.energy_uj, &start.energy_uj) {
            d.energy_read = true;
            for (src, reason) in [("rapl", &m.rapl.reason), ("nvml", &m.nvml.reason)] {
                if let Some(r) = reason {
                    d.reasons.insert(src.to_owned(), r.clone());
                }
            }
            let n_rapl = m.rapl.domains.len();
            let mut got = [false; 2];
            for (i, name) in m.domain_names().enumerate() {
                let uj = match (&begin[i], &end[i]) {
                    (Ok(a), Ok(b)) if i < n_rapl => m.rapl.domains[i].delta_uj(*a, *b),
                    (Ok(a), Ok(b)) => Ok(b.saturating_sub(*a)),
                    (Err(r), _) | (_, Err(r)) => Err(r.clone()),
                };
                let in_total = i >= n_rapl || m.rapl.domains[i].in_total;
                match uj {
                    Ok(uj) => {
                        got[usize::from(i >= n_rapl)] = true;
                        let j = uj as f64 * 1e-6;
                        d.joules.push((name.to_owned(), j));
                        if in_total {
                            *d.total_joules.get_or_insert(0.0) += j;
                        }
                    }
                    Err(r) => {
                        // A whole-source reason already explains an unreadable domain.
                        let src = if i < n_rapl { "rapl" } else { "nvml" };
                        if !d.reasons.contains_key(src) {
                            d.reasons.insert(name.to_owned(), r.to_string());
                        }
                    }
                }
            }
            d.available.push(("rapl", got[0]));
            d.available.push(("nvml", got[1]));
        }
        if let (Some(end), Some(begin)) = (&self.cpu, &start.cpu) {
            d.cpu_read = true;
            let counts = match (begin, end) {
                (Ok(a), Ok(b)) => b.since(a),
                (Err(r), _) | (_, Err(r)) => Err(r.clone()),
            };
            d.available.push(("perf", counts.is_ok()));
            match counts {
                Ok((c, i)) => {
                    d.cycles = Some(c);
                    d.instructions = Some(i);
                }
                Err(r) => {
                    d.reasons.insert("perf".to_owned(), r.to_string());
                }
            }
        }
        Ok(d)
    }
}

/// Span/timer attributes are the spans' own attribute values, so a delta attaches as is.
pub use crate::trace::AttrValue;

fn count(n: u64) -> AttrValue {
    AttrValue::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

impl Delta {
    /// Energy reasons, whole sources first (rapl, nvml), then single domains.
    fn energy_reasons(&self) -> impl Iterator<Item = (&String, &String)> {
        let source = |k: &str| match k {
            "rapl" => 0,
            "nvml" => 1,
            _ => 2,
        };
        let mut v: Vec<_> = self.reasons.iter().filter(|(k, _)| *k != "perf").collect();
        v.sort_by_key(|(k, _)| source(k));
        v.into_iter()
    }

    /// Flat attributes for a span or timer: `energy.<domain>.joules`, `energy.total.joules`,
    /// `cpu.cycles`, `cpu.instructions`; an unreadable source gives its reason instead
    /// (`energy` when no energy figure exists at all, else `energy.<source>`; `cpu.counters`).
    pub fn attributes(&self) -> Vec<(String, AttrValue)> {
        let mut out = Vec::with_capacity(self.joules.len() + 4);
        if self.energy_read {
            if self.joules.is_empty() {
                let why: Vec<&str> = self
                    .energy_reasons()
                    .map(|(_, v)| v.strip_prefix("not available: ").unwrap_or(v))
                    .collect();
                out.push((
                    "energy".to_owned(),
                    AttrValue::Str(format!("not available: {}", why.join("; "))),
                ));
            } else {
                for (name, j) in &self.joules {
                    out.push((format!("energy.{name}.joules"), AttrValue::Float(*j)));
                }
                if let Some(t) = self.total_joules {
                    out.push(("energy.total.joules".to_owned(), AttrValue::Float(t)));
                }
                for (k, v) in self.energy_reasons() {
                    out.push((format!("energy.{k}"), AttrValue::Str(v.clone())));
                }
            }
        }
        if self.cpu_read {
            match (self.cycles, self.instructions) {
                (Some(c), Some(i)) => {
                    out.push(("cpu.cycles".to_owned(), count(c)));
                    out.push(("cpu.instructions".to_owned(), count(i)));
                }
                _ => {
                    let why = self.reasons.get("perf").cloned().unwrap_or_default();
                    out.push(("cpu.counters".to_owned(), AttrValue::Str(why)));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    fn fake_powercap(tag: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("system0-meter-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for (dir, name, e) in [
            ("intel-rapl:0", "package-0", 1_000_000u64),
            ("intel-rapl:0:0", "core", 500_000),
            ("intel-rapl:0:1", "dram", 200_000),
        ] {
            let p = root.join(dir);
            fs::create_dir_all(&p).unwrap();
            fs::write(p.join("name"), name).unwrap();
            fs::write(p.join("energy_uj"), e.to_string()).unwrap();
            fs::write(p.join("max_energy_range_uj"), "262143328850").unwrap();
        }
        root
    }

    fn meter(root: &Path) -> Arc<Meter> {
        Arc::new(Meter::open(&MeterConfig {
            powercap_root: Some(root),
            nvml_library: Some("libsystem0-absent-nvml.so.1"),
            perf: true,
        }))
    }

    #[test]
    fn joules_totals_and_reasons() {
        let root = fake_powercap("delta");
        let m = meter(&root);
        let a = m.snapshot(true, true);
        fs::write(root.join("intel-rapl:0/energy_uj"), "3500000").unwrap();
        fs::write(root.join("intel-rapl:0:0/energy_uj"), "1500000").unwrap();
        fs::write(root.join("intel-rapl:0:1/energy_uj"), "700000").unwrap();
        let d = m.snapshot(true, true).since(&a).unwrap();
        assert_eq!(
            d.joules,
            [
                ("cpu_package_0".to_owned(), 2.5),
                ("cpu_core_0".to_owned(), 1.0),
                ("cpu_dram_0".to_owned(), 0.5)
            ]
        );
        assert_eq!(d.total_joules, Some(3.0)); // core lies inside the package
        assert!(d.reasons["nvml"].starts_with("not available: libsystem0-absent-nvml"));
        let attrs = d.attributes();
        assert!(attrs.contains(&("energy.total.joules".to_owned(), AttrValue::Float(3.0))));
        assert!(attrs.iter().any(|(k, _)| k == "energy.nvml"));
    }

    #[test]
    fn nothing_readable_is_one_reason_and_no_number() {
        let m = Arc::new(Meter::open(&MeterConfig {
            powercap_root: Some(Path::new("/nonexistent/powercap")),
            nvml_library: Some("libsystem0-absent-nvml.so.1"),
            perf: false,
        }));
        let a = m.snapshot(true, true);
        let d = m.snapshot(true, true).since(&a).unwrap();
        assert!(d.joules.is_empty());
        assert_eq!(d.total_joules, None);
        assert_eq!(d.cycles, None);
        let attrs = d.attributes();
        let AttrValue::Str(energy) = &attrs[0].1 else {
            panic!("{attrs:?}")
        };
        assert_eq!(attrs[0].0, "energy");
        assert!(energy.starts_with("not available: /nonexistent/powercap absent; "));
        assert_eq!(
            attrs[1],
            (
                "cpu.counters".to_owned(),
                AttrValue::Str("not available: perf counters switched off".to_owned())
            )
        );
    }

    #[test]
    fn snapshots_of_two_meters_do_not_subtract() {
        let root = fake_powercap("two");
        let (m1, m2) = (meter(&root), meter(&root));
        let err = m2.snapshot(true, false).since(&m1.snapshot(true, false));
        assert!(matches!(err, Err(CoreError::InvalidArgument(_))));
    }

    #[test]
    fn unrequested_parts_leave_no_attributes() {
        let root = fake_powercap("unasked");
        let m = meter(&root);
        let a = m.snapshot(false, false);
        let d = m.snapshot(false, false).since(&a).unwrap();
        assert!(d.attributes().is_empty());
    }
}
