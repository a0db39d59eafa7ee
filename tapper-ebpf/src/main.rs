//! eBPF programs that catch failed `socket()` calls. Two probe pairs share one correlation
//! scheme: the entry saves the arguments by `pid_tgid`, the return emits an event on failure.
#![no_std]
#![no_main]

mod correlate;
mod kprobe;
mod maps;
mod tracepoint;

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
