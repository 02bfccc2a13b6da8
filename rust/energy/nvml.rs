//! NVIDIA GPU energy through NVML, loaded at run time.
//!
//! `libnvidia-ml.so.1` ships with the driver, not with CUDA toolkits or wheels, so system0 never
//! links it: it is opened with `dlopen` on first use, and a machine without it gets a reason
//! instead of a load error. `nvmlDeviceGetTotalEnergyConsumption` gives millijoules since the
//! driver was loaded (Volta and newer); NVML calls are thread-safe, so device handles are
//! shared between threads. A read takes milliseconds (3 ms median, up to 17 ms, measured on
//! an H100 host), so readings come from a background [`Sampler`] every
//! [`SAMPLE_PERIOD`] instead of from the caller's thread.

use std::ffi::{c_char, c_int, c_uint, c_ulonglong, c_void, CStr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libloading::Library;

use super::sampler::Sampler;

/// How often NVML is re-read while anyone asks; its energy counter itself moves only every
/// few tens of milliseconds.
pub const SAMPLE_PERIOD: Duration = Duration::from_millis(20);
/// Sampling stops after this long without a reader.
const SAMPLE_IDLE: Duration = Duration::from_secs(5);

type Readings = Vec<Result<u64, Arc<str>>>;

/// The soname the driver installs (the unversioned `.so` comes only with dev packages).
pub const DEFAULT_LIBRARY: &str = "libnvidia-ml.so.1";

type NvmlReturn = c_int;
type Device = *mut c_void;
const NVML_SUCCESS: NvmlReturn = 0;

struct Api {
    // Kept alive for as long as the function pointers below are used.
    _lib: Library,
    device_count: unsafe extern "C" fn(*mut c_uint) -> NvmlReturn,
    handle_by_index: unsafe extern "C" fn(c_uint, *mut Device) -> NvmlReturn,
    total_energy: unsafe extern "C" fn(Device, *mut c_ulonglong) -> NvmlReturn,
    device_name: unsafe extern "C" fn(Device, *mut c_char, c_uint) -> NvmlReturn,
    error_string: unsafe extern "C" fn(NvmlReturn) -> *const c_char,
}

impl Api {
    fn load(library: &str) -> Result<Api, String> {
        // SAFETY: loading NVML runs only its (trusted, driver-shipped) initialisers.
        let lib = unsafe { Library::new(library) }.map_err(|e| {
            let e = e.to_string();
            if e.contains("No such file") {
                format!("not available: {library} not found (no NVIDIA driver installed)")
            } else {
                format!("not available: {library} not loadable: {e}")
            }
        })?;
        // SAFETY: the symbol types below are NVML's documented C signatures.
        unsafe {
            let sym = |name: &str| format!("not available: {library} lacks {name}");
            let init = *lib
                .get::<unsafe extern "C" fn() -> NvmlReturn>(b"nvmlInit_v2\0")
                .map_err(|_| sym("nvmlInit_v2"))?;
            let api = Api {
                device_count: *lib
                    .get(b"nvmlDeviceGetCount_v2\0")
                    .map_err(|_| sym("nvmlDeviceGetCount_v2"))?,
                handle_by_index: *lib
                    .get(b"nvmlDeviceGetHandleByIndex_v2\0")
                    .map_err(|_| sym("nvmlDeviceGetHandleByIndex_v2"))?,
                total_energy: *lib
                    .get(b"nvmlDeviceGetTotalEnergyConsumption\0")
                    .map_err(|_| sym("nvmlDeviceGetTotalEnergyConsumption"))?,
                device_name: *lib
                    .get(b"nvmlDeviceGetName\0")
                    .map_err(|_| sym("nvmlDeviceGetName"))?,
                error_string: *lib
                    .get(b"nvmlErrorString\0")
                    .map_err(|_| sym("nvmlErrorString"))?,
                _lib: lib,
            };
            // nvmlInit is reference counted; system0 never calls nvmlShutdown, so the handles
            // stay valid for the life of the process.
            let rc = init();
            if rc != NVML_SUCCESS {
                return Err(format!(
                    "not available: nvmlInit_v2 failed: {}",
                    api.describe(rc)
                ));
            }
            Ok(api)
        }
    }

    fn describe(&self, rc: NvmlReturn) -> String {
        // SAFETY: nvmlErrorString returns a static NUL-terminated string (or null).
        let p = unsafe { (self.error_string)(rc) };
        if p.is_null() {
            format!("NVML error {rc}")
        } else {
            // SAFETY: checked non-null above; NVML owns the static string.
            let s = unsafe { CStr::from_ptr(p) }.to_string_lossy();
            format!("{s} (NVML error {rc})")
        }
    }
}

fn load_cached(library: &str) -> Result<Arc<Api>, String> {
    // The default library is loaded once per process; any other path (tests, unusual
    // installs) is loaded each time it is asked for.
    static DEFAULT: OnceLock<Result<Arc<Api>, String>> = OnceLock::new();
    if library == DEFAULT_LIBRARY {
        DEFAULT
            .get_or_init(|| Api::load(library).map(Arc::new))
            .clone()
    } else {
        Api::load(library).map(Arc::new)
    }
}

/// One GPU as NVML sees it.
pub struct GpuDomain {
    /// `gpu_<index>` in NVML's enumeration order.
    pub name: String,
    /// The product name, e.g. "NVIDIA H100 80GB HBM3".
    pub model: String,
    handle: Device,
    /// Why this GPU's energy cannot be read, if it cannot (pre-Volta GPUs, permissions).
    pub unavailable: Option<Arc<str>>,
}

impl std::fmt::Debug for GpuDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuDomain")
            .field("name", &self.name)
            .field("model", &self.model)
            .field("unavailable", &self.unavailable)
            .finish()
    }
}

// SAFETY: NVML device handles are opaque, process-wide and documented as thread-safe.
unsafe impl Send for GpuDomain {}
// SAFETY: as above; the handle is never mutated by system0.
unsafe impl Sync for GpuDomain {}

/// Every GPU NVML reports, or why there are none.
pub struct NvmlReader {
    /// Reads every GPU in the background (it holds the library); `None` without GPUs.
    sampler: Option<Arc<Sampler<Readings>>>,
    pub gpus: Vec<GpuDomain>,
    /// `None` when at least one GPU's energy is readable.
    pub reason: Option<String>,
}

impl std::fmt::Debug for NvmlReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlReader")
            .field("gpus", &self.gpus)
            .field("reason", &self.reason)
            .finish()
    }
}

impl NvmlReader {
    /// Loads `library` (normally [`DEFAULT_LIBRARY`]) and enumerates the GPUs. Never fails:
    /// a machine without NVIDIA GPUs gets a reader with a reason.
    pub fn open(library: &str) -> NvmlReader {
        let api = match load_cached(library) {
            Ok(api) => api,
            Err(reason) => return NvmlReader::unavailable(reason),
        };
        let mut count: c_uint = 0;
        // SAFETY: count is a valid out-pointer.
        let rc = unsafe { (api.device_count)(&mut count) };
        if rc != NVML_SUCCESS {
            let reason = format!(
                "not available: nvmlDeviceGetCount_v2 failed: {}",
                api.describe(rc)
            );
            return NvmlReader::unavailable(reason);
        }
        let gpus: Vec<GpuDomain> = (0..count).map(|i| GpuDomain::probe(&api, i)).collect();
        let reason = if gpus.is_empty() {
            Some("not available: NVML reports no GPU".to_owned())
        } else if gpus.iter().all(|g| g.unavailable.is_some()) {
            gpus[0].unavailable.as_deref().map(str::to_owned)
        } else {
            None
        };
        // what the sampler thread needs: the library and each GPU's handle or reason
        let targets: Vec<(String, usize, Option<Arc<str>>)> = gpus
            .iter()
            .map(|g| (g.name.clone(), g.handle as usize, g.unavailable.clone()))
            .collect();
        let sampler = (!targets.is_empty()).then(|| {
            Sampler::new(
                move || {
                    targets
                        .iter()
                        .map(|(name, handle, unavailable)| match unavailable {
                            Some(r) => Err(r.clone()),
                            None => read_mj(&api, *handle as Device)
                                .map(|mj| mj.saturating_mul(1000))
                                .map_err(|e| {
                                    Arc::from(format!("not available: {name} energy: {e}"))
                                }),
                        })
                        .collect()
                },
                SAMPLE_PERIOD,
                SAMPLE_IDLE,
            )
        });
        NvmlReader {
            sampler,
            gpus,
            reason,
        }
    }

    /// Every GPU's energy since the driver loaded, in µJ (NVML counts mJ), from the latest
    /// background sample (see [`Sampler`]).
    pub fn read_all_uj(&self) -> Readings {
        self.sampler.as_ref().map_or_else(Vec::new, |s| s.get())
    }

    /// A reader that reads nothing, for `reason`.
    pub fn unavailable(reason: String) -> NvmlReader {
        NvmlReader {
            sampler: None,
            gpus: Vec::new(),
            reason: Some(reason),
        }
    }
}

impl GpuDomain {
    fn probe(api: &Api, index: c_uint) -> GpuDomain {
        let name = format!("gpu_{index}");
        let mut handle: Device = std::ptr::null_mut();
        // SAFETY: handle is a valid out-pointer.
        let rc = unsafe { (api.handle_by_index)(index, &mut handle) };
        if rc != NVML_SUCCESS {
            let reason = format!(
                "not available: nvmlDeviceGetHandleByIndex_v2({index}) failed: {}",
                api.describe(rc)
            );
            return GpuDomain {
                name,
                model: String::new(),
                handle,
                unavailable: Some(Arc::from(reason)),
            };
        }
        let mut buf = [0 as c_char; 96];
        // SAFETY: buf is valid for buf.len() bytes; NVML NUL-terminates on success.
        let model = if unsafe { (api.device_name)(handle, buf.as_mut_ptr(), buf.len() as c_uint) }
            == NVML_SUCCESS
        {
            // SAFETY: NUL-terminated by NVML within buf.
            unsafe { CStr::from_ptr(buf.as_ptr()) }
                .to_string_lossy()
                .into_owned()
        } else {
            String::new()
        };
        let unavailable = read_mj(api, handle).err().map(|e| {
            Arc::from(format!(
                "not available: {name} ({model}): nvmlDeviceGetTotalEnergyConsumption: {e} \
                 (needs a Volta or newer GPU)"
            ))
        });
        GpuDomain {
            name,
            model,
            handle,
            unavailable,
        }
    }
}

fn read_mj(api: &Api, handle: Device) -> Result<u64, String> {
    let mut mj: c_ulonglong = 0;
    // SAFETY: handle came from NVML; mj is a valid out-pointer.
    let rc = unsafe { (api.total_energy)(handle, &mut mj) };
    if rc == NVML_SUCCESS {
        Ok(mj)
    } else {
        Err(api.describe(rc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_a_reason() {
        let r = NvmlReader::open("libsystem0-no-such-nvml.so.1");
        assert!(r.gpus.is_empty());
        let reason = r.reason.unwrap();
        assert!(
            reason.starts_with("not available: libsystem0-no-such-nvml.so.1 not found"),
            "{reason}"
        );
    }

    #[test]
    fn a_library_without_nvml_symbols_is_a_reason() {
        // libc is loadable everywhere but is not NVML.
        let r = NvmlReader::open("libc.so.6");
        assert_eq!(
            r.reason.as_deref(),
            Some("not available: libc.so.6 lacks nvmlInit_v2")
        );
    }

    #[test]
    fn the_real_driver_reads_or_says_why() {
        let r = NvmlReader::open(DEFAULT_LIBRARY);
        match &r.reason {
            Some(reason) => assert!(reason.starts_with("not available: "), "{reason}"),
            None => {
                let i = r.gpus.iter().position(|g| g.unavailable.is_none()).unwrap();
                let a = r.read_all_uj()[i].clone().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(300));
                let b = r.read_all_uj()[i].clone().unwrap();
                // An idle GPU still draws tens of watts: 300 ms is several joules.
                assert!(b > a, "{} did not count energy: {a} -> {b}", r.gpus[i].name);
                eprintln!(
                    "{} ({}): {:.3} J in 300 ms",
                    r.gpus[i].name,
                    r.gpus[i].model,
                    (b - a) as f64 / 1e6
                );
            }
        }
    }
}
