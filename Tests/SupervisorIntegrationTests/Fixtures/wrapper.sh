#!/bin/sh
# A start script that forgot `exec`: the shell stays the supervisor's worker, the server runs as its child.
"$@"
echo "wrapper: the server exited ($?)" >&2
