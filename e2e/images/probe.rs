//! The one program of the test images, built static with rustc. With no arguments it only
//! sleeps (the pod sandbox's pause process). `fail N MS [LINGER_MS]` makes N failing
//! `socket(9999, SOCK_STREAM, 0)` calls (EAFNOSUPPORT), MS milliseconds apart, then
//! lingers LINGER_MS (default 0) and exits.

use std::{thread::sleep, time::Duration};

extern "C" {
    fn socket(domain: i32, kind: i32, protocol: i32) -> i32;
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if (3..=4).contains(&args.len()) && args[0] == "fail" {
        let ms = |arg: Option<&String>| -> u64 {
            arg.map_or(0, |a| a.parse().expect("fail N MS [LINGER_MS]: milliseconds"))
        };
        let count: u32 = args[1].parse().expect("fail N MS [LINGER_MS]: N is a count");
        let gap = ms(args.get(2));
        for _ in 0..count {
            // SAFETY: socket() takes plain integers; the call fails, so no fd leaks.
            unsafe { socket(9999, 1, 0) };
            sleep(Duration::from_millis(gap));
        }
        sleep(Duration::from_millis(ms(args.get(3))));
        return;
    }
    loop {
        sleep(Duration::from_secs(3600));
    }
}
