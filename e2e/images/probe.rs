//! The one program of the test images, built static with rustc. With no arguments it only
//! sleeps (the pod sandbox's pause process). `fail N MS` first makes N failing
//! `socket(9999, SOCK_STREAM, 0)` calls (EAFNOSUPPORT), MS milliseconds apart.

use std::{thread::sleep, time::Duration};

extern "C" {
    fn socket(domain: i32, kind: i32, protocol: i32) -> i32;
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() == 3 && args[0] == "fail" {
        let count: u32 = args[1].parse().expect("fail N MS: N is a count");
        let gap: u64 = args[2].parse().expect("fail N MS: MS is milliseconds");
        for _ in 0..count {
            // SAFETY: socket() takes plain integers; the call fails, so no fd leaks.
            unsafe { socket(9999, 1, 0) };
            sleep(Duration::from_millis(gap));
        }
    }
    loop {
        sleep(Duration::from_secs(3600));
    }
}
