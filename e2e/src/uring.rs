//! A small io_uring of one workload thread that makes `IORING_OP_SOCKET` requests (5.19+),
//! which reach the kernel's socket code without the socket system call.

use anyhow::{Context, bail};
use io_uring::{IoUring, opcode};

pub struct SocketRing {
    ring: IoUring,
}

impl SocketRing {
    /// Sets up the ring and checks with one successful request that the kernel knows
    /// `IORING_OP_SOCKET`.
    pub fn new() -> anyhow::Result<Self> {
        let mut ring = Self {
            ring: IoUring::new(8).context("io_uring_setup")?,
        };
        match ring.socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)? {
            Ok(fd) => crate::provoke::close(fd),
            Err(errno) => bail!(
                "a valid IORING_OP_SOCKET request failed with errno {errno}: this kernel's \
                 io_uring lacks the socket opcode (5.19+)"
            ),
        }
        Ok(ring)
    }

    /// One `IORING_OP_SOCKET` request: the descriptor, or the errno it failed with.
    pub fn socket(
        &mut self,
        family: i32,
        sock_type: i32,
        protocol: i32,
    ) -> anyhow::Result<Result<i32, i32>> {
        let entry = opcode::Socket::new(family, sock_type, protocol).build();
        // SAFETY: the request holds no pointers into user memory.
        unsafe { self.ring.submission().push(&entry) }.context("queueing a socket request")?;
        self.ring.submit_and_wait(1).context("io_uring_enter")?;
        let res = self
            .ring
            .completion()
            .next()
            .context("no completion for the socket request")?
            .result();
        Ok(if res >= 0 { Ok(res) } else { Err(-res) })
    }
}
