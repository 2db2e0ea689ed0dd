// The git commit a binary was built from: scripts/lib.sh writes commit.h beside this file before every
// build (it is not committed); a plain `swift build` without it says "unknown".
#include "build_info.h"

#if __has_include("commit.h")
#include "commit.h"
#endif
#ifndef PREFORK_GIT_COMMIT
#define PREFORK_GIT_COMMIT "unknown"
#endif

const char *prefork_git_commit(void) { return PREFORK_GIT_COMMIT; }
