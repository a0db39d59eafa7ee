//! Plain `#[repr(C)]` records shared by the eBPF programs and the user-space tapper.
//! Layouts use explicit padding and no `bool`, so both sides agree byte for byte.
#![no_std]

/// Length of the kernel's task command name (`TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;

/// Which program caught a failure.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    /// The kprobe/kretprobe pair on `__sys_socket`.
    Kprobe = 1,
    /// The `sys_enter_socket` / `sys_exit_socket` tracepoint pair.
    Tracepoint = 2,
    /// `sys_exit_socket` alone, the arguments read from the saved user registers.
    ExitOnly = 3,
    /// fexit on `__sys_socket` (arguments and return value in one program).
    Fexit = 4,
    /// `io_uring:io_uring_complete` for an `IORING_OP_SOCKET` request.
    IoUring = 5,
    /// Never from the kernel: user space's record of the failures the rate limit
    /// suppressed on a key that then went quiet.
    RateLimit = 6,
}

impl ProbeKind {
    pub fn from_raw(raw: u8) -> Option<Self> {
        match raw {
            1 => Some(Self::Kprobe),
            2 => Some(Self::Tracepoint),
            3 => Some(Self::ExitOnly),
            4 => Some(Self::Fexit),
            5 => Some(Self::IoUring),
            6 => Some(Self::RateLimit),
            _ => None,
        }
    }
}

/// The kernel path a failed call took (`SocketFailure::source`).
pub mod source {
    /// The `socket()` system call.
    pub const SYSCALL: u8 = 1;
    /// An `IORING_OP_SOCKET` request.
    pub const IO_URING: u8 = 2;
}

/// Saved by the entry probe, keyed by `pid_tgid`, and consumed by the return probe.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PendingCall {
    pub family: i32,
    pub sock_type: i32,
    pub protocol: i32,
    pub _pad: u32,
    pub start_ns: u64,
}

/// One failed `socket()` call, as the kernel emits it into the ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SocketFailure {
    /// `bpf_ktime_get_ns()` at return (CLOCK_MONOTONIC).
    pub end_ns: u64,
    /// Return time minus entry time.
    pub duration_ns: u64,
    pub cgroup_id: u64,
    pub tgid: u32,
    pub tid: u32,
    pub uid: u32,
    pub gid: u32,
    pub family: i32,
    /// The raw `type` argument, flags (`SOCK_CLOEXEC`, `SOCK_NONBLOCK`) included.
    pub sock_type: i32,
    pub protocol: i32,
    /// Positive errno (the call returned `-errno`).
    pub errno: i32,
    pub comm: [u8; COMM_LEN],
    /// A [`ProbeKind`] value.
    pub probe: u8,
    /// 1 when `family`, `sock_type` and `protocol` are known (from the entry probe, the
    /// saved user registers, fexit's arguments or the io_uring request).
    pub has_args: u8,
    /// 1 when `duration_ns` is known (only a pair's entry probe gives a start time).
    pub has_duration: u8,
    /// A [`source`] value.
    pub source: u8,
    /// Failures of the same (tgid, errno) the kernel's rate limit suppressed since that
    /// key's previous event; this record stands for `1 + suppressed` failures.
    pub suppressed: u32,
    /// What the kernel read in the failing task, which vanishes with the process.
    pub context: TaskContext,
}

/// Bytes of the executable's file name the kernel copies (NUL included).
pub const EXE_NAME_LEN: usize = 64;
/// Bytes of the arguments the kernel copies (`mm->arg_start`, NULs between arguments).
pub const CMDLINE_PREFIX_LEN: usize = 128;
/// Words of the open-descriptor bitmap the kernel counts at most: a larger descriptor
/// table (more than 64 times this many) leaves the count unread.
pub const FD_BITMAP_WORDS: u32 = 16;

/// Which parts of a [`TaskContext`] (and of a [`ContextLayout`]) are valid.
pub mod context {
    /// `nofile_soft` and `nofile_hard`.
    pub const NOFILE: u32 = 1 << 0;
    /// `open_fds`.
    pub const OPEN_FDS: u32 = 1 << 1;
    pub const CAP_EFFECTIVE: u32 = 1 << 2;
    pub const SECCOMP: u32 = 1 << 3;
    pub const EXE_NAME: u32 = 1 << 4;
    pub const CMDLINE: u32 = 1 << 5;
    /// The arguments were longer than `cmdline` holds.
    pub const CMDLINE_CUT: u32 = 1 << 6;
    /// Every part a record can carry.
    pub const ALL: u32 = NOFILE | OPEN_FDS | CAP_EFFECTIVE | SECCOMP | EXE_NAME | CMDLINE;
}

/// The failing task's limits, descriptors, credentials and identity, read by the kernel in
/// the task's own context on the failure path only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TaskContext {
    /// [`context`] bits of the parts read.
    pub valid: u32,
    /// Open descriptors (set bits of the descriptor table's `open_fds` bitmap).
    pub open_fds: u32,
    /// `task_struct.seccomp.mode`: 0 disabled, 1 strict, 2 filter.
    pub seccomp_mode: u32,
    /// Bytes of `cmdline` filled.
    pub cmdline_len: u32,
    /// `RLIMIT_NOFILE` (`rlim_cur`, `rlim_max`); `u64::MAX` is unlimited.
    pub nofile_soft: u64,
    pub nofile_hard: u64,
    /// `cred->cap_effective`: bit n is capability n.
    pub cap_effective: u64,
    /// The executable's file name (`mm->exe_file`'s dentry), NUL-terminated.
    pub exe_name: [u8; EXE_NAME_LEN],
    /// The first bytes of the arguments, NUL-separated.
    pub cmdline: [u8; CMDLINE_PREFIX_LEN],
}

impl TaskContext {
    /// Nothing read.
    pub const EMPTY: Self = Self {
        valid: 0,
        open_fds: 0,
        seccomp_mode: 0,
        cmdline_len: 0,
        nofile_soft: 0,
        nofile_hard: 0,
        cap_effective: 0,
        exe_name: [0; EXE_NAME_LEN],
        cmdline: [0; CMDLINE_PREFIX_LEN],
    };
}

/// Where a task's context lies, from the kernel's BTF, written by user space into the
/// `CONTEXT_LAYOUT` global. Offsets are bytes into the named struct; `valid` holds the
/// [`context`] bits of the parts whose offsets were found (0 reads nothing).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextLayout {
    pub valid: u32,
    /// `task_struct.signal`, then `signal_struct.rlim[RLIMIT_NOFILE]`'s two values.
    pub task_signal: u32,
    pub signal_nofile_cur: u32,
    pub signal_nofile_max: u32,
    /// `task_struct.files`, `files_struct.fdt`, `fdtable.max_fds`, `fdtable.open_fds`.
    pub task_files: u32,
    pub files_fdt: u32,
    pub fdt_max_fds: u32,
    pub fdt_open_fds: u32,
    /// `task_struct.cred`, `cred.cap_effective`.
    pub task_cred: u32,
    pub cred_cap_effective: u32,
    /// `task_struct.seccomp.mode`.
    pub task_seccomp_mode: u32,
    /// `task_struct.mm`, `mm_struct.exe_file`, `file.f_path.dentry`, `dentry.d_name.name`.
    pub task_mm: u32,
    pub mm_exe_file: u32,
    pub file_dentry: u32,
    pub dentry_name: u32,
    /// `mm_struct.arg_start`, `mm_struct.arg_end`.
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    pub _pad: u32,
}

impl ContextLayout {
    /// No offsets known: the kernel reads no context.
    pub const NONE: Self = Self {
        valid: 0,
        task_signal: 0,
        signal_nofile_cur: 0,
        signal_nofile_max: 0,
        task_files: 0,
        files_fdt: 0,
        fdt_max_fds: 0,
        fdt_open_fds: 0,
        task_cred: 0,
        cred_cap_effective: 0,
        task_seccomp_mode: 0,
        task_mm: 0,
        mm_exe_file: 0,
        file_dentry: 0,
        dentry_name: 0,
        mm_arg_start: 0,
        mm_arg_end: 0,
        _pad: 0,
    };
}

/// Frames of a user stack the kernel captures at most (`bpf_get_stack` depth).
pub const STACK_FRAMES: usize = 32;

/// Bytes of the executable's path as the process passed it to `execve` (its stack top),
/// NUL included.
pub const EXEC_PATH_LEN: usize = 256;

/// Bytes of an ELF build id as the kernel reports it (`BPF_BUILD_ID_SIZE`).
pub const BUILD_ID_LEN: usize = 20;

/// [`StackFrameRaw::status`] values (`enum bpf_stack_build_id_status`).
pub mod frame_status {
    /// No frame.
    pub const EMPTY: i32 = 0;
    /// `build_id` and a file offset in `offset_or_ip`.
    pub const VALID: i32 = 1;
    /// The kernel could not read the build id: the raw address in `offset_or_ip`.
    pub const IP: i32 = 2;
}

/// One user frame as `bpf_get_stack(.., BPF_F_USER_STACK | BPF_F_USER_BUILD_ID)` fills it
/// (`struct bpf_stack_build_id`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StackFrameRaw {
    /// A [`frame_status`] value.
    pub status: i32,
    /// The ELF build id of the mapped file, zero-padded (with [`frame_status::VALID`]).
    pub build_id: [u8; BUILD_ID_LEN],
    /// The file offset (VALID) or the instruction address (IP).
    pub offset_or_ip: u64,
}

/// A failed call with the caller's user stack (`tapper --stacks`): the kernel emits this
/// longer record instead of a bare [`SocketFailure`] when stacks are on, so user space
/// tells the two apart by length.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FailureWithStack {
    pub failure: SocketFailure,
    /// Valid entries of `frames` (0 when the stack could not be read).
    pub frame_count: u32,
    pub _pad: u32,
    /// The path the process's executable was started by (`execve`'s file name, which the
    /// kernel keeps right after the environment strings), NUL-terminated; empty when
    /// unreadable. A hint, checked by build id, for a process gone before user space looks.
    pub exec_path: [u8; EXEC_PATH_LEN],
    /// The user frames, innermost first.
    pub frames: [StackFrameRaw; STACK_FRAMES],
}

/// Where the kernel finds the end of a task's environment strings (for
/// [`FailureWithStack::exec_path`]), from the kernel's BTF; written with the stacks switch
/// into the `STACK_CONFIG` global.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackConfig {
    /// 1 with `--stacks`; 0 leaves every failure's record bare.
    pub enabled: u32,
    /// Byte offset of `task_struct.mm`; 0 leaves `exec_path` empty.
    pub task_mm: u32,
    /// Byte offset of `mm_struct.env_end`.
    pub mm_env_end: u32,
    pub _pad: u32,
}

impl StackConfig {
    pub const OFF: Self = Self {
        enabled: 0,
        task_mm: 0,
        mm_env_end: 0,
        _pad: 0,
    };
}

/// A successful `socket()` whose descriptor crossed the warn ratio of the process's soft
/// `RLIMIT_NOFILE`, as the kernel emits it into the `WARNINGS` ring buffer (at most one per
/// process per [`WarnConfig::interval_ns`]).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NofileWarning {
    /// `bpf_ktime_get_ns()` at return (CLOCK_MONOTONIC).
    pub ts_ns: u64,
    /// The soft `RLIMIT_NOFILE` (`rlim_cur`) at the call.
    pub limit: u64,
    pub cgroup_id: u64,
    pub tgid: u32,
    /// The descriptor the call returned: `fd + 1` descriptors are in use at least.
    pub fd: u32,
    pub comm: [u8; COMM_LEN],
}

/// Denominator of [`WarnConfig::ratio`].
pub const WARN_RATIO_ONE: u32 = 1 << 16;

/// How the successful path decides on a nofile warning, written by user space into the
/// `WARN_CONFIG` global. Offsets come from the kernel's BTF.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WarnConfig {
    /// At most one warning per process in this many nanoseconds.
    pub interval_ns: u64,
    /// Descriptors below this number never warn (the one compare most calls cost);
    /// `u32::MAX` turns nofile warnings off.
    pub floor: u32,
    /// The warn ratio in units of 1 / [`WARN_RATIO_ONE`].
    pub ratio: u32,
    /// Byte offset of `task_struct.signal`.
    pub task_signal: u32,
    /// Byte offset of `signal_struct.rlim[RLIMIT_NOFILE].rlim_cur`.
    pub signal_nofile_cur: u32,
}

impl WarnConfig {
    /// Nofile warnings off: no descriptor reaches the floor.
    pub const OFF: Self = Self {
        interval_ns: 0,
        floor: u32::MAX,
        ratio: 0,
        task_signal: 0,
        signal_nofile_cur: 0,
    };
}

/// Indices into the per-CPU `COUNTERS` array.
pub mod counter {
    /// `socket()` entries seen.
    pub const CALLS: u32 = 0;
    /// Returns with a negative value.
    pub const FAILURES: u32 = 1;
    /// Failures whose event could not be reserved in the ring buffer (an event that
    /// carried suppressed failures counts them too).
    pub const DROPS: u32 = 2;
    /// Failed returns with no saved entry (the probes attached mid-call, or the LRU evicted
    /// it): their events carry no arguments.
    pub const MISSES: u32 = 3;
    /// Failures the rate limit kept out of the ring buffer; each is carried, exactly, by
    /// a later event's `suppressed` (or user space's sweep record).
    pub const SUPPRESSED: u32 = 4;
    pub const COUNT: u32 = 5;
}

/// Slots in the per-CPU `ERRNO_COUNTS` array; errno values at or above the last slot
/// are counted in it.
pub const ERRNO_SLOTS: u32 = 256;

/// Where the calling task's saved user registers keep the `socket()` arguments, read by
/// user space from the kernel's BTF (`struct pt_regs`, per architecture) and written into
/// the `REGS_LAYOUT` global. Offsets are bytes into `struct pt_regs`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegsLayout {
    pub family: u32,
    pub sock_type: u32,
    pub protocol: u32,
    /// The register that keeps the system call number after the call (`orig_ax`).
    pub syscall_nr: u32,
    /// `socket`'s number on this architecture; other numbers mean the arguments are not
    /// `socket()`'s, and are left unknown.
    pub socket_nr: u32,
    /// How the program finds the task's user `pt_regs` ([`regs_route`]); `NONE` leaves
    /// arguments unknown on register reads.
    pub route: u32,
    /// For `regs_route::TASK_STACK`: the offset of `stack` in `struct task_struct`, and
    /// that of the user `pt_regs` from the stack's base (`THREAD_SIZE` less the stack's
    /// top padding and `sizeof(struct pt_regs)`).
    pub task_stack: u32,
    pub stack_regs: u32,
}

/// How a program finds the current task's saved user registers (`RegsLayout::route`).
pub mod regs_route {
    /// Not at all: arguments read from registers are unknown.
    pub const NONE: u32 = 0;
    /// `bpf_task_pt_regs(bpf_get_current_task_btf())` (5.15).
    pub const HELPER: u32 = 1;
    /// `task->stack + stack_regs`, for kernels without the helper.
    pub const TASK_STACK: u32 = 2;
}

/// Where an `IORING_OP_SOCKET` request keeps its opcode and arguments, from the kernel's
/// BTF (`struct io_kiocb`, `struct io_socket`) and the `io_uring_complete` tracepoint
/// format; written into the `IO_URING_LAYOUT` global.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoUringLayout {
    /// Offsets of `req` (a pointer) and `res` (an int) in the tracepoint record.
    pub tp_req: u32,
    pub tp_res: u32,
    /// `io_kiocb.opcode` (one byte).
    pub opcode: u32,
    /// `IORING_OP_SOCKET`.
    pub op_socket: u32,
    /// `io_socket.domain`, `.type`, `.protocol` (ints at the start of the request).
    pub domain: u32,
    pub sock_type: u32,
    pub protocol: u32,
    pub _pad: u32,
}

/// Where exit-only mode's program reads `ret` in the `sys_exit_socket` record: a constant,
/// because the verifier allows only constant offsets into a tracepoint's context. User
/// space refuses the mode when tracefs says otherwise.
pub const EXIT_ONLY_RET_OFFSET: u32 = 16;

/// Byte offsets of the arguments in the syscall tracepoint records, read by user space
/// from tracefs and written into the eBPF program's `TRACEPOINT_LAYOUT` global.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TracepointLayout {
    pub enter_family: u32,
    pub enter_type: u32,
    pub enter_protocol: u32,
    pub exit_ret: u32,
}

/// The kernel's rate limit per (tgid, errno), written by user space into the `RATE_LIMIT`
/// global: a token bucket kept as the time it is full again (GCRA), in nanoseconds.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Nanoseconds one token takes to come back (1 s / rate); 0 turns the limit off.
    pub interval_ns: u64,
    /// How far the bucket may be behind: `(burst - 1) * interval_ns`.
    pub tolerance_ns: u64,
    /// A key without a failure for this long is quiet: its pending count is left to user
    /// space's sweep, which emits it and deletes the key.
    pub quiet_ns: u64,
}

/// A key of the `RATE_STATE` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateKey {
    pub tgid: u32,
    /// Positive errno.
    pub errno: u32,
}

/// A value of the `RATE_STATE` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RateState {
    /// When the bucket is full again (the theoretical arrival time of the next event).
    pub full_at_ns: u64,
    /// The key's last failure.
    pub last_ns: u64,
    /// Suppressed failures not yet carried by an event or emitted by the sweep.
    pub pending: u64,
}

/// When the kernel wakes user space, written into the `WAKEUP` global: an event is
/// submitted without a wake-up unless this long passed since the last forced one or the
/// ring holds more than `max_bytes`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wakeup {
    /// 0 wakes user space for every event.
    pub interval_ns: u64,
    pub max_bytes: u64,
}

const _: () = assert!(size_of::<TaskContext>() == 40 + EXE_NAME_LEN + CMDLINE_PREFIX_LEN);
const _: () = assert!(size_of::<SocketFailure>() == 80 + size_of::<TaskContext>());
const _: () = assert!(size_of::<StackFrameRaw>() == 32);
const _: () = assert!(
    size_of::<FailureWithStack>()
        == size_of::<SocketFailure>() + 8 + EXEC_PATH_LEN + 32 * STACK_FRAMES
);
const _: () = assert!(size_of::<StackConfig>() == 16);
const _: () = assert!(size_of::<ContextLayout>() == 72);
const _: () = assert!(size_of::<PendingCall>() == 24);
const _: () = assert!(size_of::<NofileWarning>() == 48);
const _: () = assert!(size_of::<WarnConfig>() == 24);
const _: () = assert!(size_of::<RegsLayout>() == 32);
const _: () = assert!(size_of::<IoUringLayout>() == 32);
const _: () = assert!(size_of::<RateLimit>() == 24);
const _: () = assert!(size_of::<RateKey>() == 8);
const _: () = assert!(size_of::<RateState>() == 24);
const _: () = assert!(size_of::<Wakeup>() == 16);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all are `#[repr(C)]` with explicit padding and only integer fields.
    unsafe impl aya::Pod for super::SocketFailure {}
    unsafe impl aya::Pod for super::FailureWithStack {}
    unsafe impl aya::Pod for super::StackConfig {}
    unsafe impl aya::Pod for super::PendingCall {}
    unsafe impl aya::Pod for super::TracepointLayout {}
    unsafe impl aya::Pod for super::RegsLayout {}
    unsafe impl aya::Pod for super::IoUringLayout {}
    unsafe impl aya::Pod for super::RateLimit {}
    unsafe impl aya::Pod for super::RateKey {}
    unsafe impl aya::Pod for super::RateState {}
    unsafe impl aya::Pod for super::Wakeup {}
    unsafe impl aya::Pod for super::NofileWarning {}
    unsafe impl aya::Pod for super::WarnConfig {}
    unsafe impl aya::Pod for super::ContextLayout {}
}
