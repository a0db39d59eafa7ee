/* A workload for the user-stack tests, built by the tests with frame pointers
 * (gcc -O0 -fno-omit-frame-pointer): main -> open_listener -> make_socket, which makes
 * one socket() system call with an unknown address family (EAFNOSUPPORT) itself (a libc
 * wrapper sets up no frame, which hides its caller), and the process exits at once.
 * Exits 0 when the call failed with EAFNOSUPPORT. */
#include <sys/socket.h>
#include <sys/syscall.h>

#include "raw_socket.h"

__attribute__((noinline)) long make_socket(void) { return raw_socket(9999, SOCK_STREAM, 0); }

__attribute__((noinline)) long open_listener(void) { return make_socket(); }

int main(void) { return open_listener() == -97 ? 0 : 1; }
