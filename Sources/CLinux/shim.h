// The C boundary of ctdoctor: the kernel's C interfaces (syscalls glibc hides, libmnl).
// KernelIO is its only importer; zlib has its own target (CZlib), and
// libnetfilter_conntrack is for the tests alone (Tests/CNetfilterConntrack).
#ifndef CTDOCTOR_CLINUX_SHIM_H
#define CTDOCTOR_CLINUX_SHIM_H

#include <stdint.h>
#include <stddef.h>
#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <poll.h>
#include <dirent.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/filter.h>
#include <libmnl/libmnl.h>

// setns(2), accept4(2), pipe2(2) and gettid(2) are declared by glibc only under _GNU_SOURCE, which the Glibc
// module Swift imports is built without; the symbols exist, so declare them here.
int setns(int fd, int nstype);
int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);
int pipe2(int fds[2], int flags);
pid_t gettid(void);

// recvmmsg(2) and struct mmsghdr, _GNU_SOURCE-only too (the layout is fixed ABI).
struct ctd_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};
int recvmmsg(int fd, struct ctd_mmsghdr *vector, unsigned int length, int flags, struct timespec *timeout);
static const int ctd_msg_waitforone = 0x10000;

#include <sys/stat.h>

// CLONE_NEWNET is likewise _GNU_SOURCE-only in <sched.h>.
static const int ctd_clone_newnet = 0x40000000;

// SO_ORIGINAL_DST lives in <linux/netfilter_ipv4.h>, whose includes clash with glibc's
// <netinet/in.h>; the value is fixed ABI.
static const int ctd_so_original_dst = 80;

// SO_ATTACH_FILTER comes from <asm/socket.h> as a macro; the value is fixed ABI.
static const int ctd_so_attach_filter = SO_ATTACH_FILTER;

// MNL_SOCKET_BUFFER_SIZE calls sysconf() inside a macro, which Swift cannot import.
static inline size_t ctd_mnl_socket_buffer_size(void) { return MNL_SOCKET_BUFFER_SIZE; }

// errno is a macro over a thread-local function call in glibc; reading it through a
// function keeps Swift from caching a stale value across calls.
static inline int ctd_errno(void) { return errno; }
static inline void ctd_set_errno(int value) { errno = value; }

// SOCK_STREAM / SOCK_CLOEXEC import as enum cases of __socket_type; plain ints are simpler.
static const int ctd_sock_stream_cloexec = SOCK_STREAM | SOCK_CLOEXEC;
static const int ctd_sock_nonblock = SOCK_NONBLOCK;
static const int ctd_sock_raw_cloexec = SOCK_RAW | SOCK_CLOEXEC;


// Opening files that tenants control (see Files.swift). openat(2) is variadic (the mode
// argument), which Swift cannot call; read-only opens need no mode.
static inline int ctd_openat(int dirfd, const char *path, int flags) { return openat(dirfd, path, flags); }

// openat2(2) has no glibc wrapper before 2.36's headers expose it, and syscall(2) is
// variadic: call it here. RESOLVE_IN_ROOT makes absolute symlinks and ".." resolve
// inside the directory `dirfd` names (a container's root), never above it.
#include <sys/syscall.h>
#include <linux/openat2.h>
static inline int ctd_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve) {
    struct open_how how = { .flags = flags, .mode = 0, .resolve = resolve };
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}
static const uint64_t ctd_resolve_in_root = RESOLVE_IN_ROOT;
static const uint64_t ctd_resolve_no_magiclinks = RESOLVE_NO_MAGICLINKS;

// O_PATH and O_NOFOLLOW are _GNU_SOURCE-only (or macros Swift sees as plain ints on some
// glibc versions); the values are fixed ABI on every Linux architecture ctdoctor builds for.
static const int ctd_o_path = 010000000;
static const int ctd_o_nofollow = 0400000;
static const int ctd_o_directory = 0200000;

// Whether a descriptor is a namespace file (nsfs): a bind mount under /var/run/netns or
// /proc/PID/ns/net. NSFS_MAGIC is in <linux/magic.h>; 1 yes, 0 no, -1 with errno.
#include <sys/vfs.h>
#include <linux/magic.h>
static inline int ctd_is_nsfs(int fd) {
    struct statfs status;
    if (fstatfs(fd, &status) != 0) return -1;
    return status.f_type == NSFS_MAGIC ? 1 : 0;
}

#endif
