/*
 * A real I/O fault under a real process: LD_PRELOAD'ed into a gongkai
 * binary by tests/io_faults.rs, it makes fsync, fdatasync and
 * sync_file_range fail with EIO on files whose path contains the text of
 * the trigger file named by GONGKAI_TEST_EIO_TRIGGER, while that file
 * exists. Nothing is synced on such a call, as on a disk that failed the
 * flush. Every other call goes to the C library. Built by the test with
 * the machine's C compiler (the one rustc links with); never shipped.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int should_fail(int fd) {
    const char *trigger = getenv("GONGKAI_TEST_EIO_TRIGGER");
    if (trigger == NULL) return 0;
    int t = open(trigger, O_RDONLY | O_CLOEXEC);
    if (t < 0) return 0;
    char want[512];
    ssize_t n = read(t, want, sizeof want - 1);
    close(t);
    if (n <= 0) return 0;
    want[n] = '\0';
    while (n > 0 && (want[n - 1] == '\n' || want[n - 1] == '\r')) want[--n] = '\0';
    if (n == 0) return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t m = readlink(link, path, sizeof path - 1);
    if (m <= 0) return 0;
    path[m] = '\0';
    return strstr(path, want) != NULL;
}

int fsync(int fd) {
    static int (*real)(int);
    if (should_fail(fd)) { errno = EIO; return -1; }
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (should_fail(fd)) { errno = EIO; return -1; }
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}

int sync_file_range(int fd, off64_t offset, off64_t nbytes, unsigned int flags) {
    static int (*real)(int, off64_t, off64_t, unsigned int);
    if (should_fail(fd)) { errno = EIO; return -1; }
    if (real == NULL)
        real = (int (*)(int, off64_t, off64_t, unsigned int))dlsym(RTLD_NEXT, "sync_file_range");
    return real(fd, offset, nbytes, flags);
}
