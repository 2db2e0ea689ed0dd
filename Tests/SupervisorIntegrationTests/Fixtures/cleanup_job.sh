#!/bin/sh
# A stand-in for the cleanup job in the supervisor's tests. JOB_MODE: quick (default), slow (2.5 s), stubborn
# (ignores SIGTERM and leaves a child sleeping, so only a SIGKILL of the whole group ends both).
# Each run appends "start <pid> <DB_POOL_SIZE> <DB_MAX_OVERFLOW>" and, if it finishes, "end <pid>" to JOB_LOG.
echo "start $$ $DB_POOL_SIZE $DB_MAX_OVERFLOW" >> "$JOB_LOG"
case "${JOB_MODE:-quick}" in
    slow) sleep 2.5 ;;
    stubborn)
        trap '' TERM
        sleep 60 &
        echo "child $!" >> "$JOB_LOG"
        wait
        ;;
esac
echo "end $$" >> "$JOB_LOG"
