#define _GNU_SOURCE
#include "CShims.h"

#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

int prefork_enable_passcred(int fd) {
    int one = 1;
    return setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
}

ssize_t prefork_recv_with_credentials(int fd, char *buffer, size_t capacity, pid_t *sender_pid, int *truncated) {
    struct iovec iov = {.iov_base = buffer, .iov_len = capacity};
    // Room for credentials and a few passed descriptors, which we close.
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 16)];
    } control;
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = &control;
    msg.msg_controllen = sizeof(control);

    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) return -1;

    *sender_pid = 0;
    *truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET) continue;
        if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
            struct ucred cred;
            memcpy(&cred, CMSG_DATA(c), sizeof(cred));
            *sender_pid = cred.pid;
        } else if (c->cmsg_type == SCM_RIGHTS) {
            size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < count; i++) {
                int passed;
                memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                close(passed);
            }
        }
    }
    return n;
}

int prefork_set_child_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1);
}

int prefork_set_parent_death_signal(int signal) {
    return prctl(PR_SET_PDEATHSIG, signal);
}

int prefork_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, name, 0, 0, 0);
}

#include <linux/filter.h>

static int attach_program(int fd, unsigned int verdict) {
    struct sock_filter program_code[] = { BPF_STMT(BPF_RET | BPF_K, verdict) };
    struct sock_fprog program = { .len = 1, .filter = program_code };
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof(program));
}

int prefork_refuse_new_connections(int fd) {
    if (attach_program(fd, 0) == 0) return PREFORK_REFUSED_BY_FILTER;
    if (errno != EPERM) return -1;
    /* A backlog of 0 lets the kernel queue one connection at most (it drops SYNs while the queue is full). */
    return listen(fd, 0) == 0 ? PREFORK_REFUSED_BY_BACKLOG : -1;
}

int prefork_can_filter_connections(int fd) {
    if (attach_program(fd, 0xffffffffu) != 0) return 0;
    setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, NULL, 0);
    return 1;
}

int prefork_peer_pid(int fd, pid_t *pid) {
    struct ucred cred;
    socklen_t length = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) return -1;
    *pid = cred.pid;
    return 0;
}

int prefork_peer_uid(int fd, uid_t *uid) {
    struct ucred cred;
    socklen_t length = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) return -1;
    *uid = cred.uid;
    return 0;
}
