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
# A restart that does not come back healthy is recorded in etcd (key
# LOCKNAME-failed = this host; not under LOCKNAME/, the lock's own prefix)
# and every other node then refuses its turn, so a config that keeps the first restarted server from coming back stops
# there instead of reaching every node; once that server is healthy again
# (fixed, or the bad change reverted, by the next apply) the record goes and
# the others go on. (It used to refuse while any peer's server did not
# answer: a node being added, whose server has never run yet, then blocked
# every existing node's restart.) Peers are still asked first, to say in the
# output which do not answer. TIMEOUT bounds the wait for this server's
# health. The lock is held by etcdctl's exec form for the whole turn;
# nothing kills etcdctl under a running restart (a lost session would not
# stop it: the turn is bounded).
set -u
# to stdout (the state's return) and the journal (the rolling-restart drill reads it)
say() { echo "$*"; logger -t airflow-restart-in-turn -- "$*" 2>/dev/null || true; }
healthy() {
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)' "$1" 2>/dev/null
}
if [ $# -ge 6 ] && [ "$1" = "turn" ]; then  # run by etcdctl, holding the lock
    failed_key=$2 unit=$3 url=$4 marker=$5 limit=$6
    shift 6
    me=$(hostname)
    failed=$(etcdctl get --print-value-only "$failed_key") || { say "refused: cannot read $failed_key from etcd"; exit 3; }
    if [ -n "$failed" ] && [ "$failed" != "$me" ]; then
        say "refused: the restart of $unit on $failed did not come back healthy; not restarting it here (fix that one first)"
        exit 3
    fi
    for peer in "$@"; do
        healthy "$peer" || say "note: $peer does not answer (a node down, or one whose server never ran yet)"
    done
    say "holding the lock, restarting $unit"
    if [ "$(systemctl show -p NeedDaemonReload --value "$unit")" = yes ]; then
        systemctl daemon-reload || exit 1
    fi
    systemctl restart "$unit" || exit 1
    deadline=$((SECONDS + limit))
    while [ $SECONDS -lt $deadline ]; do
        if healthy "$url"; then
            rm -f "$marker"
            [ -z "$failed" ] || etcdctl del "$failed_key" >/dev/null
            say "$unit healthy at $url"
            exit 0
        fi
        sleep 1
    done
    etcdctl put "$failed_key" "$me" >/dev/null
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
exec etcdctl lock --ttl 30 "$lock" "$0" turn "$lock-failed" "$unit" "$url" "$marker" "$limit" "$@"
