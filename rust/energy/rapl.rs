//! RAPL energy counters through the Linux powercap sysfs interface.
//!
//! The kernel's `intel_rapl` drivers (used for AMD Zen CPUs too) expose one zone per CPU package
//! (`intel-rapl:N`, name `package-N`) with subzones (`intel-rapl:N:M`: `core`, `uncore`, `dram`),
//! a platform zone (`psys`) on some laptops, and MMIO duplicates (`intel-rapl-mmio:N`). Each zone
//! has `energy_uj`, a microjoule counter that wraps at `max_energy_range_uj`.
//!
//! Each `energy_uj` file is opened once and re-read with `pread` at offset 0 (sysfs regenerates
//! the value on every read at offset 0), so a reading costs one syscall per domain and no path
//! lookup. The root is a parameter so that tests can point the reader at a real directory tree
//! they built themselves.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The sysfs directory where the kernel publishes powercap zones.
pub const DEFAULT_ROOT: &str = "/sys/class/powercap";

/// One RAPL zone that system0 reports.
#[derive(Debug)]
pub struct RaplDomain {
    /// Stable report name: `cpu_package_0`, `cpu_dram_0`, `cpu_core_0`, `cpu_psys`, ...
    pub name: String,
    /// The zone directory (for messages).
    pub path: PathBuf,
    /// The counter wraps back to zero after this value (µJ); `None` when the file is missing.
    pub max_range_uj: Option<u64>,
    /// Whether this domain is disjoint from the others counted in a total: packages and DRAM
    /// are; core/uncore lie inside their package and psys contains the packages.
    pub in_total: bool,
    /// The open `energy_uj`, or why it cannot be read.
    file: Result<File, Arc<str>>,
}

impl RaplDomain {
    /// Reads the counter now (µJ).
    pub fn read_uj(&self) -> Result<u64, Arc<str>> {
        match &self.file {
            Ok(f) => read_u64_at(f).map_err(|e| {
                Arc::from(format!(
                    "not available: reading {} failed: {e}",
                    self.path.join("energy_uj").display()
                ))
            }),
            Err(reason) => Err(reason.clone()),
        }
    }

    /// Why this domain cannot be read, if it cannot.
    pub fn unavailable(&self) -> Option<&str> {
        self.file.as_ref().err().map(|r| &**r)
    }

    /// Energy between two readings in µJ, undoing one wraparound of the counter.
    pub fn delta_uj(&self, start: u64, end: u64) -> Result<u64, Arc<str>> {
        counter_delta(start, end, self.max_range_uj).ok_or_else(|| {
            Arc::from(format!(
                "not available: {} went backwards ({start} -> {end} µJ) and its \
                 max_energy_range_uj is unknown, so the wraparound cannot be undone",
                self.path.join("energy_uj").display()
            ))
        })
    }
}

/// `end - start` for a counter that wraps after `max`: one wrap is undone. A span longer than
/// one wrap period (minutes at full load on a big package) under-counts; RAPL gives no way
/// to tell how many wraps happened.
pub fn counter_delta(start: u64, end: u64, max: Option<u64>) -> Option<u64> {
    if end >= start {
        Some(end - start)
    } else {
        // The counter runs 0..=max, then restarts at 0: from start up to max, then 0 to end.
        max.filter(|&m| m >= start).map(|m| m - start + end)
    }
}

/// All RAPL domains under a powercap root, or why there are none.
#[derive(Debug)]
pub struct RaplReader {
    pub domains: Vec<RaplDomain>,
    /// `None` when at least one domain is readable.
    pub reason: Option<String>,
}

impl RaplReader {
    /// Discovers the RAPL zones under `root` and opens their counters. Never fails: a machine
    /// without RAPL gives a reader with no readable domain and a reason.
    pub fn open(root: &Path) -> RaplReader {
        let entries = match fs::read_dir(root) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return RaplReader::none(format!("not available: {} absent", root.display()));
            }
            Err(e) => {
                return RaplReader::none(format!(
                    "not available: cannot list {}: {e}",
                    root.display()
                ))
            }
        };
        let mut zones: Vec<Zone> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| Zone::parse(&e.file_name().to_string_lossy(), e.path()))
            .collect();
        // MSR zones before their MMIO duplicates, then by index: names and order are stable.
        zones.sort_by(|a, b| (a.mmio, &a.indices).cmp(&(b.mmio, &b.indices)));

        let mut domains: Vec<RaplDomain> = Vec::new();
        for zone in &zones {
            let Some(label) = read_trimmed(&zone.path.join("name")) else {
                continue;
            };
            let name = zone.report_name(&label);
            if domains.iter().any(|d| d.name == name) {
                // The MMIO interface reports the same package energy as the MSR one: counting
                // both would double the joules.
                continue;
            }
            let max_range_uj =
                read_trimmed(&zone.path.join("max_energy_range_uj")).and_then(|s| s.parse().ok());
            let in_total = label.starts_with("package") || label == "dram";
            domains.push(RaplDomain {
                name,
                max_range_uj,
                in_total,
                file: open_counter(&zone.path.join("energy_uj")),
                path: zone.path.clone(),
            });
        }

        let reason = if domains.is_empty() {
            Some(format!(
                "not available: no RAPL zone under {} (the intel_rapl_msr / intel_rapl_mmio \
                 drivers are not loaded, or this is a VM that hides the energy MSRs)",
                root.display()
            ))
        } else if domains.iter().all(|d| d.file.is_err()) {
            domains
                .iter()
                .find_map(|d| d.unavailable().map(str::to_owned))
        } else {
            None
        };
        RaplReader { domains, reason }
    }

    fn none(reason: String) -> RaplReader {
        RaplReader {
            domains: Vec::new(),
            reason: Some(reason),
        }
    }
}

/// A powercap zone directory such as `intel-rapl:0:2` or `intel-rapl-mmio:0`.
struct Zone {
    path: PathBuf,
    indices: Vec<u32>,
    mmio: bool,
}

impl Zone {
    fn parse(dir_name: &str, path: PathBuf) -> Option<Zone> {
        // Control types (`intel-rapl`, no colon) hold no counter; other powercap drivers
        // (`dtpm`, ...) are not energy meters.
        let (kind, rest) = dir_name.split_once(':')?;
        if !kind.contains("rapl") {
            return None;
        }
        let indices = rest
            .split(':')
            .map(|s| s.parse().ok())
            .collect::<Option<Vec<u32>>>()?;
        Some(Zone {
            path,
            indices,
            mmio: kind.contains("mmio"),
        })
    }

    /// `cpu_<name>` for a top-level zone, `cpu_<name>_<package>` for a subzone, so that
    /// `dram` under package 1 reads `cpu_dram_1`.
    fn report_name(&self, label: &str) -> String {
        let mut name = String::from("cpu_");
        name.extend(label.chars().map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        }));
        if self.indices.len() > 1 {
            name.push('_');
            name.push_str(&self.indices[0].to_string());
        }
        name
    }
}

fn open_counter(path: &Path) -> Result<File, Arc<str>> {
    let file = File::open(path).map_err(|e| {
        let hint = if e.kind() == ErrorKind::PermissionDenied {
            " (since Linux 5.10 energy_uj is readable by root only: run as root, or grant \
             read access with a udev rule or `chmod o+r`)"
        } else {
            ""
        };
        Arc::<str>::from(format!(
            "not available: cannot open {}: {e}{hint}",
            path.display()
        ))
    })?;
    // Some kernels open the file but refuse the read; find out now, not in the first span.
    read_u64_at(&file).map_err(|e| {
        Arc::<str>::from(format!(
            "not available: cannot read {}: {e}",
            path.display()
        ))
    })?;
    Ok(file)
}

fn read_u64_at(file: &File) -> std::io::Result<u64> {
    let mut buf = [0u8; 32];
    let n = file.read_at(&mut buf, 0)?;
    std::str::from_utf8(&buf[..n])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, "not an unsigned integer"))
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(root: &Path, dir: &str, name: &str, energy: u64, max: Option<u64>) -> PathBuf {
        let p = root.join(dir);
        fs::create_dir_all(&p).unwrap();
        fs::write(p.join("name"), format!("{name}\n")).unwrap();
        fs::write(p.join("energy_uj"), format!("{energy}\n")).unwrap();
        if let Some(m) = max {
            fs::write(p.join("max_energy_range_uj"), format!("{m}\n")).unwrap();
        }
        p
    }

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("system0-rapl-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn absent_root_says_so() {
        let r = RaplReader::open(Path::new("/nonexistent/powercap"));
        assert!(r.domains.is_empty());
        assert_eq!(
            r.reason.as_deref(),
            Some("not available: /nonexistent/powercap absent")
        );
    }

    #[test]
    fn empty_root_has_no_zone() {
        let root = tmp("empty");
        fs::create_dir_all(root.join("intel-rapl")).unwrap(); // control type, no counter
        let r = RaplReader::open(&root);
        assert!(r.domains.is_empty());
        assert!(r.reason.unwrap().contains("no RAPL zone"));
    }

    #[test]
    fn discovers_names_totals_and_skips_mmio_duplicates() {
        let root = tmp("discover");
        zone(&root, "intel-rapl:0", "package-0", 100, Some(1000));
        zone(&root, "intel-rapl:0:0", "core", 10, Some(1000));
        zone(&root, "intel-rapl:0:1", "dram", 20, Some(1000));
        zone(&root, "intel-rapl:1", "package-1", 5, Some(1000));
        zone(&root, "intel-rapl-mmio:0", "package-0", 7, Some(1000));
        zone(&root, "dtpm:0", "soc", 7, None);
        let r = RaplReader::open(&root);
        assert_eq!(r.reason, None);
        let names: Vec<_> = r.domains.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            ["cpu_package_0", "cpu_core_0", "cpu_dram_0", "cpu_package_1"]
        );
        let totals: Vec<_> = r.domains.iter().map(|d| d.in_total).collect();
        assert_eq!(totals, [true, false, true, true]);
        assert_eq!(r.domains[2].read_uj().unwrap(), 20);
    }

    #[test]
    fn rereads_the_open_file_and_undoes_wraparound() {
        let root = tmp("wrap");
        let p = zone(&root, "intel-rapl:0", "package-0", 900, Some(1000));
        let r = RaplReader::open(&root);
        let d = &r.domains[0];
        let a = d.read_uj().unwrap();
        fs::write(p.join("energy_uj"), "950\n").unwrap();
        let b = d.read_uj().unwrap();
        assert_eq!(d.delta_uj(a, b).unwrap(), 50);
        fs::write(p.join("energy_uj"), "30\n").unwrap();
        let c = d.read_uj().unwrap();
        assert_eq!(d.delta_uj(b, c).unwrap(), 80); // 950 -> 1000 -> 0 -> 30
    }

    #[test]
    fn backwards_without_max_is_a_reason_not_a_number() {
        let root = tmp("nomax");
        zone(&root, "intel-rapl:0", "package-0", 900, None);
        let r = RaplReader::open(&root);
        let err = r.domains[0].delta_uj(900, 10).unwrap_err();
        assert!(err.contains("went backwards"), "{err}");
    }

    #[test]
    fn garbage_counter_is_unavailable() {
        let root = tmp("garbage");
        let p = zone(&root, "intel-rapl:0", "package-0", 1, Some(10));
        fs::write(p.join("energy_uj"), "n/a\n").unwrap();
        let r = RaplReader::open(&root);
        assert_eq!(r.domains.len(), 1);
        let reason = r.reason.unwrap();
        assert!(reason.starts_with("not available: cannot read"), "{reason}");
    }

    #[test]
    fn delta_math() {
        assert_eq!(counter_delta(5, 9, None), Some(4));
        assert_eq!(counter_delta(9, 5, None), None);
        assert_eq!(counter_delta(9, 5, Some(10)), Some(6));
        assert_eq!(counter_delta(11, 5, Some(10)), None);
    }
}
