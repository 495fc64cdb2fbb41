//! The few raw system calls the tools need, each in a tiny function with its safety argument.

/// True if stderr is a terminal (progress lines are printed only then).
pub fn stderr_is_terminal() -> bool {
    // SAFETY: isatty only inspects the descriptor number; any value is allowed.
    unsafe { libc::isatty(libc::STDERR_FILENO) == 1 }
}

/// Clock ticks per second, for the CPU times in `/proc/PID/stat`.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no memory effects; it answers -1 for unknown names.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

/// Asks the kernel to wake this thread's timed waits on time: a timer slack of 1 ns instead of
/// the default 50 µs (prctl(2) `PR_SET_TIMERSLACK`). Best effort: if refused, waits are merely
/// up to 50 µs late.
pub fn sharpen_timers() {
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer argument and touches no memory.
    let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
}

/// Sends SIGTERM to process `pid` (a server to stop cleanly, reporting as it exits).
pub fn terminate(pid: u32) {
    signal(pid, libc::SIGTERM);
}

/// Sends SIGINT to process `pid` (strace writes its summary when interrupted).
pub fn interrupt(pid: u32) {
    signal(pid, libc::SIGINT);
}

fn signal(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill takes plain integers and touches no memory; a child we started has this pid.
    let _ = unsafe { libc::kill(pid, signal) };
}
