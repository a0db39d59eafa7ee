//! Exit-only mode's self-test: the tapper makes one failing `socket()` call with known
//! arguments and checks that its event comes back from the kernel with exactly them.
//! Other records that arrive meanwhile are kept for the pipeline, in order. Every tapper
//! leaves any tapper's self-test call out of what it reports ([`is_self_test`]).

use std::time::{Duration, Instant};

use aya::maps::{MapData, RingBuf};
use tapper_common::SocketFailure;

/// An address family no kernel has (`__sock_create` refuses it before loading modules),
/// with flags in the type, so that every argument register is checked.
const FAMILY: i32 = 4321;
const TYPE: i32 = libc::SOCK_DGRAM | libc::SOCK_CLOEXEC;
const PROTOCOL: i32 = 4242;
const WAIT: Duration = Duration::from_secs(2);

/// Whether `raw` is a tapper's self-test call (this one's or another's on the node, e.g.
/// during a rolling restart): no program makes this call, so it is never reported.
pub fn is_self_test(raw: &SocketFailure) -> bool {
    raw.has_args != 0
        && (raw.family, raw.sock_type, raw.protocol) == (FAMILY, TYPE, PROTOCOL)
        && raw.errno == libc::EAFNOSUPPORT
}

/// What the self-test read from the ring buffer besides its own event.
pub struct Passed {
    /// Records of other processes' failures, to be handled like any later record.
    pub others: Vec<Vec<u8>>,
    /// The errno of the self-test's own failure, which the kernel counted.
    pub errno: i32,
}

/// Makes the known failing call and waits for its event.
pub fn run(events: &mut RingBuf<MapData>) -> Result<Passed, String> {
    let tid = nix::unistd::gettid().as_raw() as u32;
    // SAFETY: socket() takes plain integers; a descriptor it returns is closed below.
    let fd = unsafe { libc::socket(FAMILY, TYPE, PROTOCOL) };
    if fd >= 0 {
        // SAFETY: this call opened fd.
        unsafe { libc::close(fd) };
        return Err(format!(
            "socket({FAMILY}, {TYPE}, {PROTOCOL}) unexpectedly succeeded"
        ));
    }
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let deadline = Instant::now() + WAIT;
    let mut others = Vec::new();
    loop {
        while let Some(record) = events.next() {
            match decode(&record).filter(|raw| raw.tid == tid && raw.errno == errno) {
                Some(raw) => return check(&raw, errno).map(|()| Passed { others, errno }),
                None => others.push(record.to_vec()),
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "its failing socket({FAMILY}, {TYPE}, {PROTOCOL}) call (errno {errno}) produced \
                 no event within {WAIT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn decode(record: &[u8]) -> Option<SocketFailure> {
    // SAFETY: the length is checked and every bit pattern is a valid SocketFailure.
    (record.len() >= size_of::<SocketFailure>())
        .then(|| unsafe { record.as_ptr().cast::<SocketFailure>().read_unaligned() })
}

fn check(raw: &SocketFailure, errno: i32) -> Result<(), String> {
    if raw.has_args == 0 {
        return Err(format!(
            "the event of its failing call (errno {errno}) came without arguments: the saved \
             registers could not be read"
        ));
    }
    let got = (raw.family, raw.sock_type, raw.protocol);
    if got != (FAMILY, TYPE, PROTOCOL) {
        return Err(format!(
            "the saved registers gave (family, type, protocol) = {got:?} instead of \
             ({FAMILY}, {TYPE}, {PROTOCOL})"
        ));
    }
    Ok(())
}
