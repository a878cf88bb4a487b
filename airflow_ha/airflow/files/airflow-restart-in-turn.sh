#!/bin/bash
# airflow-restart-in-turn LOCKNAME UNIT HEALTH_URL MARKER TIMEOUT [PEER_HEALTH_URL...]
#
# Restarts UNIT (an Airflow API server) while this node holds the etcd lock
# LOCKNAME, then waits until HEALTH_URL answers before the lock is let go:
# the API servers behind HAProxy restart one node at a time, so tasks'
# Execution API calls always find a server (restarted all at once by a
# parallel apply, they got 503 for the whole restart). Runs only while
# MARKER exists (the apply wrote it when the config or venv changed) and
# removes it once the server is healthy; a failed run keeps it, so the next
# apply restarts again.
#
# Never takes a healthy server down while another is down: holding the
# lock, if this node's server answers and a peer's (PEER_HEALTH_URL) does
# not, it refuses. So a config that keeps the first restarted server from
# coming back stops there instead of reaching every node; once that server
# is fixed (or the bad change reverted) the next apply goes on.
# TIMEOUT bounds the wait for this server's health. The lock is held by
# etcdctl's exec form for the whole turn; nothing kills etcdctl under a
# running restart (a lost session would not stop it: the turn is bounded).
set -u
# to stdout (the state's return) and the journal (the rolling-restart drill reads it)
say() { echo "$*"; logger -t airflow-restart-in-turn -- "$*" 2>/dev/null || true; }
healthy() {
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)' "$1" 2>/dev/null
}
if [ $# -ge 5 ] && [ "$1" = "turn" ]; then  # run by etcdctl, holding the lock
    unit=$2 url=$3 marker=$4 limit=$5
    shift 5
    if healthy "$url"; then
        for peer in "$@"; do
            if ! healthy "$peer"; then
                say "refused: $peer does not answer; not restarting the healthy $unit here (fix that one first)"
                exit 3
            fi
        done
    fi
    say "holding the lock, restarting $unit"
    if [ "$(systemctl show -p NeedDaemonReload --value "$unit")" = yes ]; then
        systemctl daemon-reload || exit 1
    fi
    systemctl restart "$unit" || exit 1
    deadline=$((SECONDS + limit))
    while [ $SECONDS -lt $deadline ]; do
        if healthy "$url"; then
            rm -f "$marker"
            say "$unit healthy at $url"
            exit 0
        fi
        sleep 1
    done
    say "$unit not healthy at $url ${limit} s after its restart; the next nodes will refuse their turn"
    exit 1
fi
if [ $# -lt 5 ]; then
    echo "usage: $0 LOCKNAME UNIT HEALTH_URL MARKER TIMEOUT [PEER_HEALTH_URL...]" >&2
    exit 64
fi
lock=$1 unit=$2 url=$3 marker=$4 limit=$5
shift 5
[ -e "$marker" ] || exit 0
# no dashed word after the lock name: etcdctl would take it for its own flag
exec etcdctl lock --ttl 30 "$lock" "$0" turn "$unit" "$url" "$marker" "$limit" "$@"
