/* A workload for the user-stack tests, built by the tests with frame pointers
 * (gcc -O0 -fno-omit-frame-pointer): main -> open_listener -> make_socket, which makes
 * one socket() system call with an unknown address family (EAFNOSUPPORT) itself (a libc
 * wrapper sets up no frame, which hides its caller), and the process exits at once.
 * Exits 0 when the call failed with EAFNOSUPPORT. */
#include <sys/socket.h>
#include <sys/syscall.h>

__attribute__((noinline)) long make_socket(void) {
    long ret;
    register long family asm("rdi") = 9999;
    register long type asm("rsi") = SOCK_STREAM;
    register long protocol asm("rdx") = 0;
    asm volatile("syscall"
                 : "=a"(ret)
                 : "0"((long)SYS_socket), "r"(family), "r"(type), "r"(protocol)
                 : "rcx", "r11", "memory");
    return ret;
}

__attribute__((noinline)) long open_listener(void) { return make_socket(); }

int main(void) { return open_listener() == -97 ? 0 : 1; }
