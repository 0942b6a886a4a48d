//! How the kernel schedules rdump's threads: a dump is a batch job (`SCHED_BATCH`).
//!
//! Why: with the server on the same machine, every net packet the server sends (16 KiB,
//! its `net_buffer_length`) wakes a reader that has drained its socket, and a woken normal
//! thread preempts the server thread that woke it (on return from `send`): the two
//! ping-pong, a context switch of each per 16 KiB. `perf record` of mariadbd during
//! `rdump --dir -t2` of sysbench 4 x 1M (2-core VM, loaded) put 10.4% of the server's CPU
//! in `finish_task_switch` (9.4% under `__send`), against 2.4% during `mydumper -t 2`
//! (whose slower client is seldom asleep when rows arrive). A `SCHED_BATCH` thread never
//! preempts the running thread when it wakes (the kernel leaves that to the tick), so the
//! server goes on filling the socket and the reader takes more per wake-up. Measured
//! (`chrt -b 0`, 3 alternating runs): the server's context switches 18,000-30,000 ->
//! ~4,000 (mydumper's: 4,500-6,000), rdump's voluntary ones ~35,000 -> ~8,500, rdump's
//! CPU 1.46 -> 1.06 s. On a remote server there is no producer to preempt, and a dump
//! that yields to interactive work on its host is what one wants anyway.
//!
//! `RDUMP_SCHED=normal` keeps the normal policy (to measure the difference). Only a thread
//! under the normal policy (`SCHED_OTHER`) is switched: an rdump started under `SCHED_IDLE`
//! (systemd `CPUSchedulingPolicy=idle`), a real-time policy or `SCHED_BATCH` already keeps
//! what its administrator chose.
//! Not for: priorities (nice), CPU affinity, or real-time policies; rload and rbackup are
//! not changed (not measured).

/// Puts the calling thread, and so every thread it starts afterwards, under `SCHED_BATCH`
/// when it is under the normal policy (Linux; a no-op elsewhere, under any other policy,
/// and when `RDUMP_SCHED=normal`). A failure is ignored: the dump is only slower.
pub fn batch() {
    if std::env::var_os("RDUMP_SCHED").is_some_and(|v| v == "normal") {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sched_getscheduler(0) only reads the calling thread's policy.
        if unsafe { libc::sched_getscheduler(0) } != libc::SCHED_OTHER {
            return;
        }
        // SAFETY: an all-zero sched_param is valid (priority 0, the only one SCHED_BATCH
        // takes); pid 0 is the calling thread.
        unsafe {
            let param: libc::sched_param = std::mem::zeroed();
            libc::sched_setscheduler(0, libc::SCHED_BATCH, &param);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn batch_applies_to_the_calling_thread_and_the_threads_it_starts() {
        std::thread::spawn(|| {
            super::batch();
            // SAFETY: sched_getscheduler(0) only reads the calling thread's policy.
            let own = unsafe { libc::sched_getscheduler(0) };
            let child = std::thread::spawn(|| unsafe { libc::sched_getscheduler(0) })
                .join()
                .unwrap();
            if std::env::var_os("RDUMP_SCHED").is_none() {
                assert_eq!(own, libc::SCHED_BATCH);
                assert_eq!(child, libc::SCHED_BATCH);
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn batch_leaves_a_thread_under_sched_idle_as_it_is() {
        std::thread::spawn(|| {
            // SAFETY: priority 0 is the only one SCHED_IDLE takes; any thread may lower
            // its own policy to SCHED_IDLE.
            let param: libc::sched_param = unsafe { std::mem::zeroed() };
            assert_eq!(
                unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) },
                0
            );
            super::batch();
            // SAFETY: sched_getscheduler(0) only reads the calling thread's policy.
            assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_IDLE);
        })
        .join()
        .unwrap();
    }
}
