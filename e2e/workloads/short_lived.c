/* Short-lived processes for the kernel-context tests: each mode makes its failing
 * socket() calls and exits at once, so only the kernel's reading in the task survives.
 *   emfile         RLIMIT_NOFILE 64, UDP sockets until EMFILE, one more failing call; each
 *                  call in udp_socket (the bare system call), so a frame-pointer stack reads
 *                  udp_socket, emfile, main
 *   raw-as-nobody  drops to uid/gid 65534, then a raw socket (EPERM: no CAP_NET_RAW)
 *   seccomp        a filter answers socket(AF_INET6, ...) with EACCES, then that call */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "raw_socket.h"

static int fail(const char *what) {
    fprintf(stderr, "short_lived: %s: %s\n", what, strerror(errno));
    return 1;
}

/* A UDP socket's descriptor, or -errno. */
__attribute__((noinline)) long udp_socket(void) { return raw_socket(AF_INET, SOCK_DGRAM, 0); }

__attribute__((noinline)) int emfile(void) {
    /* Descriptors inherited above 2 would count too: start from 0, 1 and 2 alone. */
    if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0) return fail("close_range");
    struct rlimit limit = {64, 64};
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return fail("setrlimit");
    long fd;
    while ((fd = udp_socket()) >= 0) {}
    if (fd != -EMFILE) return errno = (int)-fd, fail("filling the table");
    if ((fd = udp_socket()) != -EMFILE) return errno = fd < 0 ? (int)-fd : 0, fail("one more");
    return 0;
}

static int raw_as_nobody(void) {
    if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
        return fail("becoming nobody");
    if (socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) >= 0 || errno != EPERM) return fail("raw socket");
    return 0;
}

static int seccomp_denied(void) {
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = {sizeof code / sizeof code[0], code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail("no_new_privs");
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) return fail("seccomp");
    if (socket(AF_INET6, SOCK_STREAM, 0) >= 0 || errno != EACCES) return fail("denied call");
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "emfile") == 0) return emfile();
    if (strcmp(mode, "raw-as-nobody") == 0) return raw_as_nobody();
    if (strcmp(mode, "seccomp") == 0) return seccomp_denied();
    fprintf(stderr, "usage: short_lived emfile|raw-as-nobody|seccomp\n");
    return 2;
}
