/* socket() as the bare system call, inlined into its caller: the caller's frame is the
 * innermost one the kernel's frame-pointer walk sees (a libc wrapper sets up no frame,
 * which hides its caller). x86_64 only. */
#include <sys/syscall.h>

static inline __attribute__((always_inline)) long raw_socket(long family_arg, long type_arg,
                                                             long protocol_arg) {
    long ret;
    register long family asm("rdi") = family_arg;
    register long type asm("rsi") = type_arg;
    register long protocol asm("rdx") = protocol_arg;
    asm volatile("syscall"
                 : "=a"(ret)
                 : "0"((long)SYS_socket), "r"(family), "r"(type), "r"(protocol)
                 : "rcx", "r11", "memory");
    return ret;
}
