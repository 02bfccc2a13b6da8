//! CPU cycles and instructions of the calling thread through `perf_event_open(2)`.
//!
//! Counters are opened per thread, on first use, as one group (cycles leads, instructions
//! follows) so both are scheduled on the PMU together and one `read(2)` returns both. They
//! count user space only (`exclude_kernel`, `exclude_hv`), which a kernel with the default
//! `perf_event_paranoid=2` permits to an unprivileged process for its own threads. They stay
//! enabled for the life of the thread: a span subtracts two readings, which is cheaper than an
//! enable/disable pair of ioctls around each span and lets nested spans share one group.
//!
//! When the kernel refuses (a VM without a virtual PMU, a seccomp filter, paranoid 3), the
//! refusal is kept per thread as a reason that names the errno and the paranoid level.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const PERF_TYPE_HARDWARE: u32 = 0;
const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_HW_CPU_CYCLES: u64 = 0;
const PERF_COUNT_HW_INSTRUCTIONS: u64 = 1;
const PERF_COUNT_SW_TASK_CLOCK: u64 = 1;
const PERF_FORMAT_TOTAL_TIME_ENABLED: u64 = 1 << 0;
const PERF_FORMAT_TOTAL_TIME_RUNNING: u64 = 1 << 1;
const PERF_FORMAT_GROUP: u64 = 1 << 3;
const FLAG_EXCLUDE_KERNEL: u64 = 1 << 5;
const FLAG_EXCLUDE_HV: u64 = 1 << 6;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
/// Most events one group holds (the read buffer is sized for it).
pub const MAX_EVENTS: usize = 4;

/// `struct perf_event_attr` as of PERF_ATTR_SIZE_VER5 (Linux 4.1): 112 bytes. The libc crate
/// does not define it; bitfields are the single `flags` word.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved_2: u16,
}

const _: () = assert!(std::mem::size_of::<PerfEventAttr>() == 112);

/// An event system0 counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Cycles,
    Instructions,
    /// Software event (CPU time of the thread in ns): works even where the PMU is hidden,
    /// so the group machinery can be tested on any Linux machine.
    TaskClock,
}

impl Event {
    fn type_config(self) -> (u32, u64) {
        match self {
            Event::Cycles => (PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES),
            Event::Instructions => (PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS),
            Event::TaskClock => (PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Event::Cycles => "cycles",
            Event::Instructions => "instructions",
            Event::TaskClock => "task-clock",
        }
    }
}

/// One group read: the raw counts and how long the group was enabled and actually running
/// (they differ when the PMU multiplexes more events than it has counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupReading {
    pub time_enabled: u64,
    pub time_running: u64,
    pub values: [u64; MAX_EVENTS],
}

impl GroupReading {
    /// Counts between `start` and `self`, scaled up for the time the group was descheduled.
    /// `None` when the group never ran in between (all counts would be guesses).
    pub fn since(&self, start: &GroupReading) -> Option<[u64; MAX_EVENTS]> {
        let enabled = self.time_enabled.wrapping_sub(start.time_enabled);
        let running = self.time_running.wrapping_sub(start.time_running);
        if running == 0 && enabled != 0 {
            return None;
        }
        let mut out = [0u64; MAX_EVENTS];
        for (i, o) in out.iter_mut().enumerate() {
            let raw = self.values[i].wrapping_sub(start.values[i]);
            *o = if running == enabled {
                raw
            } else {
                (raw as u128 * enabled as u128 / running as u128) as u64
            };
        }
        Some(out)
    }
}

/// Counters of the calling thread, opened as one group; closed on drop.
#[derive(Debug)]
pub struct PerfGroup {
    fds: Vec<OwnedFd>,
}

impl PerfGroup {
    /// Opens `events` (at most `MAX_EVENTS`) for the calling thread, user space only, enabled.
    pub fn open(events: &[Event]) -> Result<PerfGroup, String> {
        assert!(!events.is_empty() && events.len() <= MAX_EVENTS);
        let mut fds: Vec<OwnedFd> = Vec::with_capacity(events.len());
        for &event in events {
            let (type_, config) = event.type_config();
            let attr = PerfEventAttr {
                type_,
                size: std::mem::size_of::<PerfEventAttr>() as u32,
                config,
                read_format: PERF_FORMAT_GROUP
                    | PERF_FORMAT_TOTAL_TIME_ENABLED
                    | PERF_FORMAT_TOTAL_TIME_RUNNING,
                flags: FLAG_EXCLUDE_KERNEL | FLAG_EXCLUDE_HV,
                ..Default::default()
            };
            let group_fd = fds.first().map_or(-1, |f| f.as_raw_fd());
            // SAFETY: attr is a valid, fully initialised perf_event_attr of the size it declares;
            // pid 0 / cpu -1 means "this thread, on any CPU".
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_perf_event_open,
                    &attr as *const PerfEventAttr,
                    0 as libc::pid_t,
                    -1 as libc::c_int,
                    group_fd as libc::c_int,
                    PERF_FLAG_FD_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(refusal_reason(event, &io::Error::last_os_error()));
            }
            // SAFETY: the kernel just returned this descriptor to us and nobody else owns it.
            fds.push(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) });
        }
        Ok(PerfGroup { fds })
    }

    /// Reads every counter of the group with one syscall.
    pub fn read(&self) -> io::Result<GroupReading> {
        // nr, time_enabled, time_running, then one value per event.
        let mut buf = [0u64; 3 + MAX_EVENTS];
        let leader = self.fds[0].as_raw_fd();
        // SAFETY: buf is valid for writes of its whole size.
        let n = unsafe { libc::read(leader, buf.as_mut_ptr().cast(), std::mem::size_of_val(&buf)) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let nr = buf[0] as usize;
        if (n as usize) < 8 * (3 + nr) || nr != self.fds.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "short perf group read",
            ));
        }
        let mut values = [0u64; MAX_EVENTS];
        values[..nr].copy_from_slice(&buf[3..3 + nr]);
        Ok(GroupReading {
            time_enabled: buf[1],
            time_running: buf[2],
            values,
        })
    }
}

/// The kernel's `perf_event_paranoid` level, if readable.
pub fn paranoid_level() -> Option<i32> {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

fn refusal_reason(event: Event, err: &io::Error) -> String {
    let errno = err.raw_os_error().unwrap_or(0);
    let name = match errno {
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ENODEV => "ENODEV",
        libc::ENOSYS => "ENOSYS",
        libc::EMFILE => "EMFILE",
        libc::EINVAL => "EINVAL",
        _ => "",
    };
    // Known errnos are named; anything else keeps the OS's own words.
    let name = if name.is_empty() {
        err.to_string()
    } else {
        name.to_owned()
    };
    let paranoid = paranoid_level().map_or_else(|| "unknown".to_owned(), |p| p.to_string());
    let why = match errno {
        libc::EACCES | libc::EPERM => {
            "permission denied: lower kernel.perf_event_paranoid to 2 or below, grant \
             CAP_PERFMON, or allow perf_event_open in the container's seccomp profile"
        }
        libc::ENOENT | libc::EOPNOTSUPP | libc::ENODEV => {
            "the CPU exposes no such hardware counter here (a VM without a virtual PMU?)"
        }
        libc::ENOSYS => "the kernel was built without perf events",
        libc::EMFILE => "the process has no file descriptors left",
        _ => "the kernel refused the event",
    };
    format!(
        "not available: perf_event_open({}) {name} (perf_event_paranoid={paranoid}): {why}",
        event.label()
    )
}

/// Cycles and instructions of one thread at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuReading {
    /// Which thread took it: readings of different threads cannot be subtracted.
    pub thread: u64,
    pub group: GroupReading,
}

impl CpuReading {
    /// `(cycles, instructions)` since `start`, or why there are none.
    pub fn since(&self, start: &CpuReading) -> Result<(u64, u64), Arc<str>> {
        if self.thread != start.thread {
            return Err(Arc::from(
                "not available: the measurement ended on another thread than it began; \
                 per-thread counters cannot be subtracted across threads",
            ));
        }
        self.group
            .since(&start.group)
            .map(|v| (v[0], v[1]))
            .ok_or_else(|| {
                Arc::from("not available: the counters were never scheduled on the PMU in between")
            })
    }
}

static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);
/// Bumped in every forked child: a perf fd inherited through fork still counts the parent's
/// thread, so a thread whose group predates the fork reopens it.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

struct ThreadCounters {
    /// Fresh after a fork too, so a reading from before the fork never subtracts.
    id: u64,
    generation: u64,
    group: Result<PerfGroup, Arc<str>>,
}

thread_local! {
    static THREAD_COUNTERS: RefCell<Option<ThreadCounters>> = const { RefCell::new(None) };
}

/// Reads the calling thread's cycles and instructions, opening its counters on first use.
pub fn read_thread() -> Result<CpuReading, Arc<str>> {
    static ATFORK: std::sync::Once = std::sync::Once::new();
    ATFORK.call_once(|| {
        // SAFETY: the handler only touches an atomic, which is safe in a freshly forked child.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
    let generation = FORK_GENERATION.load(Ordering::Relaxed);
    let read = THREAD_COUNTERS.try_with(|cell| {
        let mut slot = cell.borrow_mut();
        let stale = slot.as_ref().is_none_or(|c| c.generation != generation);
        let c = if stale {
            slot.insert(ThreadCounters {
                id: NEXT_THREAD.fetch_add(1, Ordering::Relaxed),
                generation,
                group: PerfGroup::open(&[Event::Cycles, Event::Instructions]).map_err(Arc::from),
            })
        } else {
            slot.as_mut().expect("checked not stale, so present")
        };
        match &c.group {
            Ok(g) => g
                .read()
                .map(|group| CpuReading {
                    thread: c.id,
                    group,
                })
                .map_err(|e| {
                    Arc::from(format!(
                        "not available: reading the perf counters failed: {e}"
                    ))
                }),
            Err(reason) => Err(reason.clone()),
        }
    });
    // A thread-local destructor reading counters while the thread exits gets a reason.
    read.unwrap_or_else(|_| Err(Arc::from("not available: the thread is exiting")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spin(n: u64) -> u64 {
        let mut x = 0u64;
        for i in 0..n {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        x
    }

    #[test]
    fn software_group_counts_thread_cpu_time() {
        // task-clock is a software event: it works in VMs, so this test exercises the
        // syscall, the group read and the delta on every Linux machine with perf events.
        let g = match PerfGroup::open(&[Event::TaskClock]) {
            Ok(g) => g,
            Err(reason) => {
                assert!(reason.starts_with("not available: perf_event_open(task-clock)"));
                eprintln!("skipped: {reason}");
                return;
            }
        };
        let a = g.read().unwrap();
        spin(20_000_000);
        let b = g.read().unwrap();
        let d = b.since(&a).unwrap();
        assert!(d[0] > 1_000_000, "task-clock grew by only {} ns", d[0]);
        assert!(b.time_enabled >= a.time_enabled);
    }

    #[test]
    fn a_two_member_group_reads_both_in_one_call() {
        // Exercises group_fd and the nr/values layout the cycles+instructions group relies on.
        let g = match PerfGroup::open(&[Event::TaskClock, Event::TaskClock]) {
            Ok(g) => g,
            Err(reason) => {
                assert!(reason.starts_with("not available: perf_event_open(task-clock)"));
                eprintln!("skipped: {reason}");
                return;
            }
        };
        let a = g.read().unwrap();
        spin(5_000_000);
        let d = g.read().unwrap().since(&a).unwrap();
        assert!(d[0] > 0 && d[1] > 0, "{d:?}");
        // Both members were scheduled together, so they saw (almost) the same CPU time.
        assert!(d[0].abs_diff(d[1]) < d[0] / 10 + 100_000, "{d:?}");
        assert_eq!(d[2..], [0, 0]);
    }

    #[test]
    fn hardware_counters_grow_with_work_or_say_why_not() {
        match read_thread() {
            Ok(a) => {
                spin(1_000_000);
                let b = read_thread().unwrap();
                let (_, small) = b.since(&a).unwrap();
                let c = read_thread().unwrap();
                spin(10_000_000);
                let d = read_thread().unwrap();
                let (cycles, big) = d.since(&c).unwrap();
                assert!(cycles > 0);
                assert!(big > small * 5, "{big} vs {small}");
            }
            Err(reason) => {
                assert!(
                    reason.starts_with("not available: perf_event_open("),
                    "{reason}"
                );
                assert!(reason.contains("perf_event_paranoid="), "{reason}");
                // The refusal is remembered: the second call gives the same reason.
                assert_eq!(read_thread().unwrap_err(), reason);
            }
        }
    }

    #[test]
    fn readings_of_two_threads_do_not_subtract() {
        let a = CpuReading {
            thread: 1,
            group: GroupReading::default(),
        };
        let b = CpuReading { thread: 2, ..a };
        assert!(b.since(&a).unwrap_err().contains("another thread"));
    }

    #[test]
    fn multiplexed_counts_are_scaled() {
        let a = GroupReading::default();
        let mut b = a;
        b.time_enabled = 100;
        b.time_running = 50;
        b.values[0] = 10;
        assert_eq!(b.since(&a).unwrap()[0], 20);
        b.time_running = 0;
        assert_eq!(b.since(&a), None);
    }
}
