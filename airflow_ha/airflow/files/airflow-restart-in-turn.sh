#!/bin/bash
# airflow-restart-in-turn LOCKNAME UNIT HEALTH_URL MARKER TIMEOUT
#
# Restarts UNIT (an Airflow API server) while this node holds the etcd lock
# LOCKNAME, then waits until HEALTH_URL answers 200 before the lock is let
# go: the API servers behind HAProxy restart one node at a time, so tasks'
# Execution API calls always find a server (restarted all at once by a
# parallel apply, they got 503 for the whole restart). Runs only while
# MARKER exists (the apply wrote it when the config or venv changed) and
# removes it once the server is healthy; a failed run keeps it, so the next
# apply restarts again. Gives up after TIMEOUT s (waiting for the turn
# included). Endpoints and TLS come from ETCDCTL_* in the environment.
# etcdctl's exec form keeps the lock while the restart runs; a lost session
# does not stop it, which is fine for a bounded restart.
set -u
# to stdout (the state's return) and the journal (the rolling-restart drill reads it)
say() { echo "$*"; logger -t airflow-restart-in-turn -- "$*" 2>/dev/null || true; }
if [ $# -eq 4 ] && [ "$1" = "turn" ]; then  # run by etcdctl, holding the lock
    unit=$2 url=$3 marker=$4
    say "holding the lock, restarting $unit"
    if [ "$(systemctl show -p NeedDaemonReload --value "$unit")" = yes ]; then
        systemctl daemon-reload || exit 1
    fi
    systemctl restart "$unit" || exit 1
    for _ in $(seq 600); do
        if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)' "$url" \
            2>/dev/null; then
            rm -f "$marker"
            say "$unit healthy at $url"
            exit 0
        fi
        sleep 1
    done
    echo "$unit not healthy at $url after 600 s" >&2
    exit 1
fi
if [ $# -ne 5 ]; then
    echo "usage: $0 LOCKNAME UNIT HEALTH_URL MARKER TIMEOUT" >&2
    exit 64
fi
lock=$1 unit=$2 url=$3 marker=$4 limit=$5
[ -e "$marker" ] || exit 0
# no dashed word after the lock name: etcdctl would take it for its own flag
timeout "$limit" etcdctl lock --ttl 30 "$lock" "$0" turn "$unit" "$url" "$marker"
rc=$?
[ $rc -eq 124 ] && echo "$unit: no turn and health within ${limit} s (lock $lock); restart left to the next apply" >&2
exit $rc
