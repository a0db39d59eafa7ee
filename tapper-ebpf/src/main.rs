//! eBPF programs that catch failed `socket()` calls: exit-only (arguments from the saved
//! registers), fexit, two probe pairs sharing one correlation scheme, and io_uring requests.
#![no_std]
#![no_main]

mod correlate;
mod exit_only;
mod fexit;
mod io_uring;
mod kprobe;
mod maps;
mod regs;
mod report;
mod tracepoint;
mod warn;

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
