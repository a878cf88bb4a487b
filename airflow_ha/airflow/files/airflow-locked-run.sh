#!/bin/bash
# airflow-locked-run LOCKNAME TTL -- COMMAND [ARGS...]
#
# Runs COMMAND only while this node holds the etcd lock LOCKNAME (a session
# lease of TTL seconds, kept alive by etcdctl). Used for Airflow 3's
# dag-processor, which must run exactly once in the cluster: every candidate
# node runs this; one holds the lock and runs the processor, the others wait
# in `etcdctl lock`. When the holder dies its lease expires after TTL seconds
# and a waiting node takes over. If etcdctl exits while COMMAND runs (session
# lost, etcd gone), COMMAND is stopped at once: no second processor runs
# while another node may hold the lock. Endpoints come from ETCDCTL_ENDPOINTS.
#
# Fencing: etcd expires a lost holder's lease on the server TTL seconds after
# its last keepalive arrived; the holder's etcdctl notices a moment later (its
# deadline runs from the last keepalive *answer*), then COMMAND must stop. So
# a stop is bounded (SIGTERM, SIGKILL after STOP_TIMEOUT s) and a new holder
# waits GRACE s after acquiring before it starts COMMAND: a partitioned old
# holder has stopped by then. The partition drill samples this every 0.5 s.
set -u
STOP_TIMEOUT=3
GRACE=5
if [ $# -lt 4 ] || [ "$3" != "--" ]; then
    echo "usage: $0 LOCKNAME TTL -- COMMAND [ARGS...]" >&2
    exit 64
fi
lock=$1
ttl=$2
shift 3

dir=${RUNTIME_DIRECTORY:-$(mktemp -d)}
fifo="$dir/lock.$$"
rm -f "$fifo"
mkfifo -m 600 "$fifo" || exit 1

child=""
lock_pid=""
# stop_child: SIGTERM, then SIGKILL if it is still running STOP_TIMEOUT s later
stop_child() {
    kill -TERM "$child" 2>/dev/null || return 0
    for _ in $(seq $((STOP_TIMEOUT * 10))); do
        kill -0 "$child" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$child" 2>/dev/null
    wait "$child"
}
stop() {
    [ -n "$child" ] && stop_child
    [ -n "$lock_pid" ] && kill -TERM "$lock_pid" 2>/dev/null && wait "$lock_pid"
    rm -f "$fifo"
    exit 0
}
trap stop TERM INT

etcdctl lock --ttl "$ttl" "$lock" >"$fifo" &
lock_pid=$!
exec 3<"$fifo"
rm -f "$fifo"

echo "waiting for the etcd lock $lock (ttl ${ttl}s)"
if ! read -r key <&3; then
    wait "$lock_pid"
    echo "etcdctl lock $lock ended before the lock was acquired (rc $?)" >&2
    exit 1
fi
echo "acquired the etcd lock $lock ($key) at $(date -u +%FT%T.%3NZ): starting $* in ${GRACE}s"
sleep "$GRACE" &
wait $!
if ! kill -0 "$lock_pid" 2>/dev/null; then
    echo "lost the etcd lock $lock during the grace period: not starting" >&2
    exit 1
fi
"$@" &
child=$!

wait -n "$lock_pid" "$child"
rc=$?
if kill -0 "$child" 2>/dev/null; then
    echo "lost the etcd lock $lock (etcdctl rc $rc): stopping $*" >&2
    stop_child
    exit 1
fi
echo "$* exited (rc $rc): releasing the etcd lock $lock"
kill -TERM "$lock_pid" 2>/dev/null
wait "$lock_pid"
exit "$rc"
