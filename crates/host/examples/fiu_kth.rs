//! A deterministic policy for libfiu's POSIX preload: preloaded after
//! `/usr/lib/fiu/fiu_posix_preload.so`, it makes exactly the k-th call
//! (counted over every point named) fail, so the fault campaign's
//! `io-sweep` can fail the 1st, 2nd, … call of one operation in turn.
//! fiu-run offers only "always" and "with probability p"; libfiu's
//! `fiu_enable_external` takes a callback, which is this.
//!
//! Environment: `AIRLOCK_FIU_POINTS` (comma-separated libfiu point names),
//! `AIRLOCK_FIU_K` (1-based), `AIRLOCK_FIU_ERRNO` (default `EIO`),
//! `AIRLOCK_FIU_MARKER` (a file created, holding the point's name, when
//! the k-th call fails: a run without it never reached k).

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// libfiu's `external_cb_t`.
type External =
    unsafe extern "C" fn(*const c_char, *mut c_int, *mut *mut c_void, *mut c_uint) -> c_int;
type EnableExternal =
    unsafe extern "C" fn(*const c_char, c_int, *mut c_void, c_uint, External) -> c_int;
type Init = unsafe extern "C" fn(c_uint) -> c_int;

static CALLS: AtomicU64 = AtomicU64::new(0);
static TARGET: AtomicU64 = AtomicU64::new(0);
static MARKER: OnceLock<CString> = OnceLock::new();

/// Called by libfiu on every call of an enabled point (inside `fiu_fail`,
/// whose recursion guard keeps the calls made here from being counted).
unsafe extern "C" fn decide(
    name: *const c_char,
    _failnum: *mut c_int,
    _failinfo: *mut *mut c_void,
    _flags: *mut c_uint,
) -> c_int {
    let n = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    if n != TARGET.load(Ordering::SeqCst) {
        return 0;
    }
    if let Some(marker) = MARKER.get() {
        // SAFETY: a NUL-terminated path, a fresh descriptor, and libfiu's
        // NUL-terminated point name, all valid for the calls.
        unsafe {
            let fd = libc::open(
                marker.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC | libc::O_CLOEXEC,
                0o644,
            );
            if fd >= 0 {
                let name = CStr::from_ptr(name).to_bytes();
                libc::write(fd, name.as_ptr().cast(), name.len());
                libc::close(fd);
            }
        }
    }
    1
}

fn symbol<T>(name: &CStr) -> Option<T> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name; the
    // pointer is only reinterpreted as the C signature libfiu declares.
    unsafe {
        let p = libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr());
        (!p.is_null()).then(|| std::mem::transmute_copy::<*mut c_void, T>(&p))
    }
}

extern "C" fn init() {
    let (Ok(points), Some(k)) = (
        std::env::var("AIRLOCK_FIU_POINTS"),
        std::env::var("AIRLOCK_FIU_K")
            .ok()
            .and_then(|k| k.parse::<u64>().ok()),
    ) else {
        return;
    };
    let errno: usize = std::env::var("AIRLOCK_FIU_ERRNO")
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(libc::EIO as usize);
    if let Some(marker) = std::env::var_os("AIRLOCK_FIU_MARKER") {
        use std::os::unix::ffi::OsStrExt;
        if let Ok(c) = CString::new(marker.as_bytes()) {
            let _ = MARKER.set(c);
        }
    }
    TARGET.store(k, Ordering::SeqCst);
    let (Some(fiu_init), Some(enable)) = (
        symbol::<Init>(c"fiu_init"),
        symbol::<EnableExternal>(c"fiu_enable_external"),
    ) else {
        eprintln!("fiu_kth: libfiu is not loaded (preload fiu_posix_preload.so first)");
        return;
    };
    // SAFETY: libfiu's own entry points, called as declared; the point
    // names live as long as the call (libfiu copies them). The preload
    // reads failinfo as the errno to set.
    unsafe {
        fiu_init(0);
        for point in points.split(',').filter(|p| !p.is_empty()) {
            if let Ok(point) = CString::new(point) {
                enable(point.as_ptr(), 1, errno as *mut c_void, 0, decide);
            }
        }
    }
}

/// Runs [`init`] when the library is loaded.
#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn() = init;
