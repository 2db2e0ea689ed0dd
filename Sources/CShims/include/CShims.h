#ifndef CSHIMS_H
#define CSHIMS_H

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

/// What the forked child needs to become a worker; prepared entirely by the parent so the child only
/// makes async-signal-safe calls between fork and execve.
typedef struct prefork_spawn_request {
    const char *path;          ///< absolute or relative path of the executable (PATH already searched)
    char *const *argv;
    char *const *envp;
    int listen_fd;             ///< becomes fd 3 in the child; -1 for none
    char *listen_pid_digits;   ///< 21 writable bytes inside an envp entry, filled with the child's pid; may be NULL
    char *watchdog_pid_digits; ///< same for WATCHDOG_PID; may be NULL
    int death_signal;          ///< PR_SET_PDEATHSIG signal; 0 for none
    int new_process_group;     ///< 1: setpgid(0, 0): the child leads a group that its own children join, so a
                               ///< signal to the group reaches its whole tree (and a terminal's Ctrl-C only the supervisor)
    pid_t parent_pid;          ///< the supervisor's pid, to close the PDEATHSIG race
    const char *cgroup_procs;  ///< a cgroup's cgroup.procs the child writes itself into before exec; may be NULL
} prefork_spawn_request;

/// fork + execve. Returns the child's pid, or -1 with `*error` set to the errno of fork or of execve
/// (in that case the child has already been reaped, so no CHLD event reports it).
pid_t prefork_spawn(const prefork_spawn_request *request, int *error);

/// Ignores SIGPIPE in the calling process and remembers how it was inherited: a worker gets it back as it was
/// (ignored under systemd's IgnoreSIGPIPE=yes, default elsewhere), rather than always reset to its default.
/// Returns 1 when it was ignored already.
int prefork_ignore_sigpipe(void);

/// Turns on SO_PASSCRED so every datagram carries the sender's pid, even from senders that do not attach it.
int prefork_enable_passcred(int fd);

/// Receives one datagram with its sender's credentials. Returns the length (or -1 with errno);
/// `*sender_pid` is 0 when the kernel attached none. File descriptors passed with SCM_RIGHTS are
/// closed at once: nothing a child sends may occupy a descriptor in the supervisor.
ssize_t prefork_recv_with_credentials(int fd, char *buffer, size_t capacity, pid_t *sender_pid, int *truncated);

/// prctl(PR_SET_CHILD_SUBREAPER, 1): orphans of our workers are re-parented to us, and we reap them.
int prefork_set_child_subreaper(void);

/// The uid of the process at the other end of a connected AF_UNIX socket (SO_PEERCRED). 0 or -1 with errno.
int prefork_peer_uid(int fd, uid_t *uid);
/// The pid of the process at the other end of a connected unix socket, as this process's PID namespace sees it.
int prefork_peer_pid(int fd, pid_t *pid);

/// prctl(PR_SET_PDEATHSIG, signal) for the calling thread's future death.
int prefork_set_parent_death_signal(int signal);

enum {
    /// A socket filter drops every segment to the listener: no new connection is queued any more.
    PREFORK_REFUSED_BY_FILTER = 1,
    /// The kernel refused the filter (EPERM): the accept queue was shrunk to a single connection instead.
    PREFORK_REFUSED_BY_BACKLOG = 2,
};

/// Makes a shared listening TCP socket stop queueing new connections, for every process that holds it, so that
/// the workers can accept what is queued and close without the kernel resetting a connection.
///
/// First choice: a classic BPF filter that drops every segment, so SYNs are dropped (the client retries a
/// second later and is refused once the listener is gone). Some kernels (seen on 6.18) allow socket filters on
/// TCP sockets only with CAP_NET_ADMIN, which a non-root service or container does not have: then the backlog
/// goes to 0, and the kernel drops SYNs while its one queue slot is taken. Returns PREFORK_REFUSED_BY_FILTER,
/// PREFORK_REFUSED_BY_BACKLOG, or -1 with errno.
int prefork_refuse_new_connections(int fd);

/// 1 when a socket filter can be attached to `fd` (an accept-all one is attached and detached again), else 0:
/// tells at start which way `prefork_refuse_new_connections` will work.
int prefork_can_filter_connections(int fd);

/// prctl(PR_SET_NAME, name): the calling thread's name, as top -H and perf show it.
int prefork_set_thread_name(const char *name);

/// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC in one call (accept4 is a GNU extension Swift's Glibc hides).
int prefork_accept_nonblocking(int fd);

/// Raises the soft RLIMIT_NOFILE to the hard limit. The soft limit stays low (1024 under systemd) only for
/// programs that use select(); systemd expects a program that needs more to raise it itself, as nginx and Go's
/// runtime do. A soft limit of 64 starved the pools of descriptors under 200 clients.
/// Returns 1 when it was raised (`*from` and `*to` say from what to what), 0 when it already was at the hard
/// limit, -1 on failure (errno).
int prefork_raise_file_limit(unsigned long long *from, unsigned long long *to);

/// pidfd_open(2) and pidfd_getfd(2) (Linux 5.6), which glibc does not wrap everywhere: a duplicate of another
/// process's descriptor, allowed for the supervisor's own children (ptrace's rules). -1 with errno otherwise.
int prefork_pidfd_open(pid_t pid);
int prefork_pidfd_getfd(int pidfd, int targetfd);

#endif
