#define _GNU_SOURCE
#include "CShims.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/// Writes a decimal pid into a buffer with no library call (async-signal-safe).
static void write_pid(char *out, pid_t pid) {
    char digits[20];
    int n = 0;
    unsigned long value = (unsigned long)pid;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0 && n < (int)sizeof(digits));
    for (int i = 0; i < n; i++) out[i] = digits[n - 1 - i];
    out[n] = '\0';
}

/// Closes every descriptor in [from, to]; close_range when the kernel has it (5.9+), a loop otherwise.
static void close_fds(unsigned int from, unsigned int to) {
    if (from > to) return;
    if (syscall(SYS_close_range, from, to, 0) == 0) return;
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) max = 65536;
    for (long fd = from; fd <= (long)to && fd < max; fd++) close((int)fd);
}

static void report_and_exit(int pipe_fd, int error) {
    ssize_t ignored = write(pipe_fd, &error, sizeof(error));
    (void)ignored;
    _exit(error == ENOENT ? 127 : 126);
}

/// Set once at start, before any child exists (`prefork_ignore_sigpipe`).
static int inherited_sigpipe_ignored = 0;

int prefork_ignore_sigpipe(void) {
    struct sigaction ignore = {0}, previous = {0};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    if (sigaction(SIGPIPE, &ignore, &previous) != 0) return 0;
    inherited_sigpipe_ignored = previous.sa_handler == SIG_IGN;
    return inherited_sigpipe_ignored;
}

static void child(const prefork_spawn_request *request, int pipe_fd) {
    pid_t self = getpid();
    if (request->listen_pid_digits) write_pid(request->listen_pid_digits, self);
    if (request->watchdog_pid_digits) write_pid(request->watchdog_pid_digits, self);

    // Into its own cgroup first, so that everything it ever starts is there too. "0" is the writer itself. A
    // failure is not fatal: the parent sees where the child ended up and falls back to the process group.
    if (request->cgroup_procs) {
        int cgroup = open(request->cgroup_procs, O_WRONLY | O_CLOEXEC);
        if (cgroup >= 0) {
            ssize_t ignored = write(cgroup, "0", 1);
            (void)ignored;
            close(cgroup);
        }
    }
    if (request->new_process_group && setpgid(0, 0) != 0) report_and_exit(pipe_fd, errno);
    if (request->death_signal != 0) {
        if (prctl(PR_SET_PDEATHSIG, request->death_signal) != 0) report_and_exit(pipe_fd, errno);
        // The supervisor may have died between fork and prctl; then nobody would ever signal us.
        if (getppid() != request->parent_pid) _exit(1);
    }

    // The supervisor blocks the signals it reads through signalfd and ignores SIGPIPE; a worker starts clean,
    // except that SIGPIPE is what the supervisor inherited: reset to its default, it undid systemd's
    // IgnoreSIGPIPE=yes, and a worker whose log reader went away died at its next log line.
    struct sigaction dfl = {0};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        if (sig == SIGPIPE && inherited_sigpipe_ignored) continue;
        sigaction(sig, &dfl, NULL);
    }
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, NULL);

    // Keep the error pipe clear of fd 3, which the listening socket takes.
    if (pipe_fd < 4) {
        int moved = fcntl(pipe_fd, F_DUPFD_CLOEXEC, 4);
        if (moved < 0) _exit(126);
        pipe_fd = moved;
    }
    if (request->listen_fd >= 0) {
        if (request->listen_fd == 3) {
            if (fcntl(3, F_SETFD, 0) != 0) report_and_exit(pipe_fd, errno);
        } else if (dup2(request->listen_fd, 3) != 3) {
            report_and_exit(pipe_fd, errno);
        }
    }
    // Capabilities the supervisor holds as ambient ones (`--cap-add NET_ADMIN` for a non-root container,
    // `AmbientCapabilities=` in a unit) are for its listener's socket filter, not for a worker that parses
    // untrusted requests: a non-root worker starts with none. (EINVAL on kernels before 4.3: nothing to clear.)
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);

    // Nothing but stdio, the socket and the error pipe (close-on-exec) reaches the worker.
    close_fds(4, (unsigned int)pipe_fd - 1);
    close_fds((unsigned int)pipe_fd + 1, ~0U);

    execve(request->path, request->argv, request->envp);
    report_and_exit(pipe_fd, errno);
}

pid_t prefork_spawn(const prefork_spawn_request *request, int *error) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        *error = errno;
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        *error = errno;
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        child(request, fds[1]);
        _exit(126);
    }
    close(fds[1]);
    // EOF means execve succeeded (the pipe closed on exec); four bytes are the child's errno.
    int child_error = 0;
    ssize_t n;
    do {
        n = read(fds[0], &child_error, sizeof(child_error));
    } while (n < 0 && errno == EINTR);
    close(fds[0]);
    if (n == (ssize_t)sizeof(child_error)) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        *error = child_error;
        return -1;
    }
    *error = 0;
    return pid;
}
