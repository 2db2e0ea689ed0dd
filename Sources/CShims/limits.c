#include "CShims.h"
#include <sys/resource.h>

int prefork_raise_file_limit(unsigned long long *from, unsigned long long *to) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
    *from = limit.rlim_cur;
    *to = limit.rlim_max;
    if (limit.rlim_cur == limit.rlim_max) return 0;
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
    return 1;
}
