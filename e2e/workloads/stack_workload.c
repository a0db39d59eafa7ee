/* A workload for the user-stack tests, built by the tests with frame pointers
 * (gcc -O0 -fno-omit-frame-pointer): it lowers RLIMIT_NOFILE, then calls socket()
 * through stack_outer -> stack_middle -> stack_inner until it has failed with EMFILE
 * COUNT times. stack_inner makes the system call itself, so the kernel's frame-pointer
 * walk starts in it (a libc wrapper sets up no frame, which hides its caller).
 *
 * Usage: stack-workload COUNT [pause]
 * Prints "failed N" when done. With "pause" it then waits on stdin: at end of input it
 * exits; given the line "again" it fails once more the same way, prints "failed again"
 * and waits again; given any other line it fails once more and exits at once (the tests
 * freeze the tapper meanwhile, so that failure is read after the process is gone). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "raw_socket.h"

__attribute__((noinline)) long stack_inner(void) { return raw_socket(AF_INET, SOCK_DGRAM, 0); }

__attribute__((noinline)) long stack_middle(void) { return stack_inner(); }

__attribute__((noinline)) long stack_outer(void) { return stack_middle(); }

/* Opens sockets until `count` calls failed with EMFILE; exits on any other error. */
static void fail_emfile(int count) {
    int failed = 0;
    while (failed < count) {
        long ret = stack_outer();
        if (ret == -24) {
            failed++;
        } else if (ret < 0) {
            fprintf(stderr, "socket failed with errno %ld, not EMFILE\n", -ret);
            exit(2);
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s COUNT [pause]\n", argv[0]);
        return 2;
    }
    int count = atoi(argv[1]);
    struct rlimit limit = {16, 16};
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
        perror("setrlimit");
        return 2;
    }
    fail_emfile(count);
    printf("failed %d\n", count);
    fflush(stdout);
    if (argc > 2 && strcmp(argv[2], "pause") == 0) {
        char line[16];
        while (fgets(line, sizeof line, stdin) != NULL) {
            fail_emfile(1);
            if (strcmp(line, "again\n") != 0) {
                _exit(0);
            }
            printf("failed again\n");
            fflush(stdout);
        }
    }
    return 0;
}
