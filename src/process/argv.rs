//! Hides passwords from the process's command line (`ps`, /proc/PID/cmdline), as
//! mysqldump does: after the options are parsed, the bytes of `-pSECRET` or
//! `--password=SECRET` are overwritten in place with `x`.
//!
//! glibc passes (argc, argv, envp) to `.init_array` functions, which is how the original
//! argv is captured here; elsewhere masking is a no-op. Not for: parsing (see `options`).

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    use std::ffi::{CStr, c_char, c_int};
    use std::sync::atomic::{AtomicIsize, AtomicPtr, Ordering};

    static ARGC: AtomicIsize = AtomicIsize::new(0);
    static ARGV: AtomicPtr<*mut c_char> = AtomicPtr::new(std::ptr::null_mut());

    extern "C" fn capture(argc: c_int, argv: *mut *mut c_char, _envp: *mut *mut c_char) {
        ARGC.store(argc as isize, Ordering::Relaxed);
        ARGV.store(argv, Ordering::Relaxed);
    }

    #[used]
    #[unsafe(link_section = ".init_array")]
    static CAPTURE: extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) = capture;

    pub fn mask(span: impl Fn(&str) -> Option<usize>) {
        let argc = ARGC.load(Ordering::Relaxed);
        let argv = ARGV.load(Ordering::Relaxed);
        if argv.is_null() {
            return;
        }
        for i in 1..argc {
            // SAFETY: argv holds argc valid NUL-terminated strings for the process's life;
            // overwriting bytes before the NUL keeps them valid.
            unsafe {
                let p = *argv.offset(i);
                if p.is_null() {
                    break;
                }
                let bytes = CStr::from_ptr(p).to_bytes();
                if bytes == b"--" {
                    break; // the rest are names, not options
                }
                let Ok(text) = std::str::from_utf8(bytes) else {
                    continue;
                };
                if let Some(start) = span(text) {
                    for j in start..bytes.len() {
                        *p.add(j) = b'x' as c_char;
                    }
                }
            }
        }
    }
}

/// Overwrites, in this process's argv, every byte from `span(arg)` to the end of `arg`.
pub fn mask(span: impl Fn(&str) -> Option<usize>) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    imp::mask(span);
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = span;
}
