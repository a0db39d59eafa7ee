//! eBPF programs that catch failed `socket()` calls: exit-only (arguments from the saved
//! registers), fexit, two probe pairs sharing one correlation scheme, and io_uring requests.
#![no_std]
#![no_main]
// Atomic add and exchange on map values: the BPF target has no atomic types.
#![feature(core_intrinsics)]
#![allow(internal_features)]

mod context;
mod correlate;
mod exit_only;
mod fexit;
mod io_uring;
mod kprobe;
mod maps;
mod rate_limit;
mod regs;
mod report;
mod stack;
mod tracepoint;
mod wakeup;
mod warn;

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
