//! A read-only file mapping that survives the file being truncated while it is read.
//!
//! Why map at all: hashing a mapped file with blake3's `update_rayon` reads the page cache in
//! place, on every core; the read path copies every byte into a buffer first (one extra pass over
//! memory), which made `hash_files` on 2 GiB ~1.4x slower than the blake3 Python package's
//! `update_mmap`.
//!
//! Why a guard: a load from a mapped page that lies wholly past the file's current end raises
//! SIGBUS, whose default action kills the process (a user truncating or rewriting an output while
//! pivot hashes it). So:
//! - one process-wide SIGBUS handler (`SA_SIGINFO | SA_ONSTACK`) is installed on first use. It is
//!   re-installed (chaining to whatever replaced it) when a mapping is made and the handler is no
//!   longer ours, e.g. after `faulthandler.enable()` ran later than the first hash;
//! - a fixed table of slots holds the active mappings as (start, len) pairs. Each slot has a
//!   sequence counter (a seqlock) so the handler reads a consistent pair without taking a lock;
//! - in the handler, if `si_addr` lies inside a registered mapping, anonymous zero pages are
//!   mapped with `MAP_FIXED` from the faulting page to the end of that mapping (`mmap` is a plain
//!   system call, safe in a signal handler), the slot's `truncated` flag is set and the handler
//!   returns: the faulting load runs again and reads zeros. The owner sees the flag after hashing
//!   and reports the file as changed; the zeros never reach a caller as a hash;
//! - any other SIGBUS goes to the previous disposition (its handler is called, or the default is
//!   restored and the fault re-executes, or the signal is re-raised if it was sent by `kill`).
//!
//! Limits: when all slots are busy, or the handler cannot be installed, `GuardedMap::new`
//! returns `None` and the caller reads the file instead. A handler installed by other code
//! *while* a mapping is being read (and that does not chain to ours) is not protected against.

use std::cell::UnsafeCell;
use std::ffi::c_void;
use std::fs::File;
use std::mem::MaybeUninit;
use std::os::unix::io::AsRawFd;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;

/// Mappings that can be active at once: one per rayon thread hashing a big file, plus callers'
/// own threads; more than this fall back to reads.
const SLOTS: usize = 64;

/// How many times the handler may be re-installed over a foreign one (each needs a saved
/// previous disposition; entries are never overwritten, so the handler reads them without a
/// lock).
const MAX_PREV: usize = 16;

struct Slot {
    /// Owned by a `GuardedMap` (claimed with a compare-exchange).
    busy: AtomicBool,
    /// Seqlock: odd while `start`/`len` are being written.
    seq: AtomicUsize,
    start: AtomicUsize,
    len: AtomicUsize,
    /// Set by the handler when it zero-filled part of this mapping.
    truncated: AtomicBool,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            busy: AtomicBool::new(false),
            seq: AtomicUsize::new(0),
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            truncated: AtomicBool::new(false),
        }
    }

    fn publish(&self, start: usize, len: usize) {
        self.seq.fetch_add(1, SeqCst);
        self.start.store(start, SeqCst);
        self.len.store(len, SeqCst);
        self.seq.fetch_add(1, SeqCst);
    }

    /// A consistent (start, len) of an active mapping, if any (async-signal-safe).
    fn snapshot(&self) -> Option<(usize, usize)> {
        let s1 = self.seq.load(SeqCst);
        if s1 % 2 == 1 {
            return None; // being changed: not the mapping that faulted (that one is stable)
        }
        let (start, len) = (self.start.load(SeqCst), self.len.load(SeqCst));
        (self.seq.load(SeqCst) == s1 && len > 0).then_some((start, len))
    }
}

static TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];

/// Previous SIGBUS dispositions; `PREV_N - 1` indexes the one our current handler chains to.
struct PrevTable(UnsafeCell<[MaybeUninit<libc::sigaction>; MAX_PREV]>);
// SAFETY: entry `i` is written once, under `INSTALL`, before `PREV_N` is raised past `i`;
// afterwards it is only read.
unsafe impl Sync for PrevTable {}
static PREV: PrevTable = PrevTable(UnsafeCell::new([const { MaybeUninit::uninit() }; MAX_PREV]));
static PREV_N: AtomicUsize = AtomicUsize::new(0);
static INSTALL: Mutex<()> = Mutex::new(());
static PAGE: AtomicUsize = AtomicUsize::new(4096);

fn handler_addr() -> usize {
    on_sigbus as *const () as usize
}

/// Make sure our handler is the current SIGBUS disposition; false if it cannot be.
fn ensure_handler() -> bool {
    let _g = INSTALL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // SAFETY: sigaction with a null new action only reads the current one into `cur`.
    let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
    if unsafe { libc::sigaction(libc::SIGBUS, ptr::null(), &raw mut cur) } != 0 {
        return false;
    }
    if cur.sa_sigaction == handler_addr() {
        return true;
    }
    let n = PREV_N.load(SeqCst);
    if n >= MAX_PREV {
        return false;
    }
    // SAFETY: sysconf is always safe to call.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if let Ok(page @ 1..) = usize::try_from(page) {
        PAGE.store(page, SeqCst);
    }
    // SAFETY: entry n is not yet visible to the handler (PREV_N == n) and we hold INSTALL.
    unsafe { (*PREV.0.get())[n].write(cur) };
    PREV_N.store(n + 1, SeqCst);
    // SAFETY: a zeroed sigaction is valid; we set the handler, flags and an empty mask.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler_addr();
    sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    unsafe {
        libc::sigemptyset(&raw mut sa.sa_mask);
        libc::sigaction(libc::SIGBUS, &raw const sa, ptr::null_mut()) == 0
    }
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // Only atomics and raw system calls below: this runs in signal context.
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler; errno is per thread.
    unsafe {
        let errno = *libc::__errno_location();
        // si_code > 0: raised by the kernel for a fault (si_addr is meaningful); <= 0: kill/raise.
        if !info.is_null() && (*info).si_code > 0 {
            let addr = (*info).si_addr() as usize;
            let page = PAGE.load(SeqCst);
            for slot in &TABLE {
                let Some((start, len)) = slot.snapshot() else {
                    continue;
                };
                if addr < start || addr - start >= len {
                    continue;
                }
                let from = addr & !(page - 1);
                let end = start + len.div_ceil(page) * page;
                let r = libc::mmap(
                    from as *mut c_void,
                    end - from,
                    libc::PROT_READ,
                    libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                if r != libc::MAP_FAILED {
                    slot.truncated.store(true, SeqCst);
                    *libc::__errno_location() = errno;
                    return;
                }
                break;
            }
        }
        chain(sig, info, ctx);
        *libc::__errno_location() = errno;
    }
}

/// Hand a SIGBUS that is not ours to the disposition we replaced.
///
/// # Safety
/// Only from `on_sigbus`, with the arguments the kernel passed to it.
unsafe fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: `info` is the kernel's siginfo (or null, checked); `PREV` entries below `PREV_N`
    // were fully written before `PREV_N` was raised and are never overwritten; a saved handler
    // address has the signature its `SA_SIGINFO` flag says.
    unsafe {
        let n = PREV_N.load(SeqCst);
        let dfl: libc::sigaction = std::mem::zeroed(); // SIG_DFL, no flags
        let prev: *const libc::sigaction = if n == 0 {
            &raw const dfl
        } else {
            (*PREV.0.get())[n - 1].as_ptr()
        };
        let h = (*prev).sa_sigaction;
        if h == libc::SIG_DFL || h == libc::SIG_IGN {
            libc::sigaction(sig, prev, ptr::null_mut());
            if info.is_null() || (*info).si_code <= 0 {
                libc::raise(sig); // sent, not a fault: returning would not deliver it again
            }
            // A fault: returning re-executes the load, which faults under the restored disposition.
            return;
        }
        if (*prev).sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) =
                std::mem::transmute(h);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(h);
            f(sig);
        }
    }
}

/// A read-only shared mapping of a whole file, registered with the SIGBUS guard.
pub struct GuardedMap {
    ptr: *mut c_void,
    len: usize,
    slot: &'static Slot,
}

impl GuardedMap {
    /// Map the first `len` bytes of `f` (`len` > 0, usually its stat size). `None` when the
    /// guard is unavailable or `mmap` fails: read the file instead.
    pub fn new(f: &File, len: usize) -> Option<GuardedMap> {
        if len == 0 || !ensure_handler() {
            return None;
        }
        let slot = TABLE
            .iter()
            .find(|s| s.busy.compare_exchange(false, true, SeqCst, SeqCst).is_ok())?;
        slot.truncated.store(false, SeqCst);
        // SAFETY: a fresh read-only mapping of an open descriptor; the result is checked.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            slot.busy.store(false, SeqCst);
            return None;
        }
        // Registered before any byte is read: every fault on it is ours to repair.
        slot.publish(p as usize, len);
        Some(GuardedMap { ptr: p, len, slot })
    }

    /// The mapped bytes (zeros past the point where the file was cut, if it was).
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr..ptr+len stays mapped readable until drop (file pages, or the handler's
        // zero pages). As with any file mapping, other processes may change the bytes under us;
        // callers compare the file's stat before and after to catch that.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }

    /// Whether some page was past the file's end when read (the file was truncated).
    pub fn truncated(&self) -> bool {
        self.slot.truncated.load(SeqCst)
    }
}

impl Drop for GuardedMap {
    fn drop(&mut self) {
        // Unregister before unmapping: the address range may be reused by the next mmap.
        self.slot.publish(0, 0);
        // SAFETY: the range was mapped by `new` and nothing borrows it any more.
        unsafe { libc::munmap(self.ptr, self.len) };
        self.slot.busy.store(false, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn truncated_file_reads_zeros_and_is_flagged() {
        let page = 4096 * 4; // a multiple of any page size in use here
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..page * 8)
            .map(|i| u8::try_from(i % 251 + 1).unwrap())
            .collect();
        File::create(&p).unwrap().write_all(&data).unwrap();
        let f = File::open(&p).unwrap();
        let m = GuardedMap::new(&f, data.len()).expect("mapped");
        assert_eq!(m.as_slice()[..10], data[..10]);
        assert!(!m.truncated());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(page as u64)
            .unwrap();
        // Without the guard this load would kill the test binary with SIGBUS.
        let s = m.as_slice();
        assert_eq!(s[page * 5], 0);
        assert!(s[page * 2..].iter().all(|&b| b == 0));
        assert_eq!(s[..page], data[..page]);
        assert!(m.truncated());
        drop(m);
        // The slot is free again and a new mapping starts clean.
        let m2 = GuardedMap::new(&f, page).expect("mapped");
        assert!(!m2.truncated());
        assert_eq!(m2.as_slice(), &data[..page]);
    }

    #[test]
    fn many_mappings_and_empty_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let f = File::open(&p).unwrap();
        assert!(GuardedMap::new(&f, 0).is_none());
        let maps: Vec<_> = (0..SLOTS + 3)
            .filter_map(|_| GuardedMap::new(&f, 3))
            .collect();
        // Other tests may hold slots at the same time: at most SLOTS succeed.
        assert!(maps.len() <= SLOTS && maps.len() >= SLOTS - 8);
        assert!(maps.iter().all(|m| m.as_slice() == b"abc"));
    }
}
