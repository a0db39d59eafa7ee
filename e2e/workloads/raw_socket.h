/* socket() as the bare system call, inlined into its caller: the caller's frame is the
 * innermost one the kernel's frame-pointer walk sees (a libc wrapper sets up no frame,
 * which hides its caller). x86_64 and aarch64. */
#include <sys/syscall.h>

static inline __attribute__((always_inline)) long raw_socket(long family_arg, long type_arg,
                                                             long protocol_arg) {
#if defined(__x86_64__)
    long ret;
    register long family asm("rdi") = family_arg;
    register long type asm("rsi") = type_arg;
    register long protocol asm("rdx") = protocol_arg;
    asm volatile("syscall"
                 : "=a"(ret)
                 : "0"((long)SYS_socket), "r"(family), "r"(type), "r"(protocol)
                 : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long family asm("x0") = family_arg; /* and the return value */
    register long type asm("x1") = type_arg;
    register long protocol asm("x2") = protocol_arg;
    register long nr asm("x8") = SYS_socket;
    asm volatile("svc #0" : "+r"(family) : "r"(type), "r"(protocol), "r"(nr) : "memory");
    return family;
#else
#error "raw_socket: only x86_64 and aarch64"
#endif
}
