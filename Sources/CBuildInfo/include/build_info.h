#pragma once

/// The git commit the binary was built from, or "unknown".
const char *prefork_git_commit(void);
