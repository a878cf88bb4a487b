#!/usr/bin/env python3
"""etcd-leader-elsewhere PATRONI_PRIMARY_URL — run by a timer on db nodes.

Keeps etcd's raft leader off the node that runs the Patroni primary. When a
node dies, the etcd members left elect a new raft leader, and a new raft
leader renews every lease to its full TTL (etcd does so on purpose, so that
no lease expires during an election). If the dead node held both, Patroni's
leader key therefore lives a whole ttl more and the failover takes ~5 s
longer (lab: 25 s instead of ~20 s). On the primary's node, this moves the
raft leadership to another healthy member (`etcdctl move-leader`, a quick
handover without an election). It never acts without a healthy target.
etcdctl reads its endpoint and TLS files from the unit's environment.
"""

import json
import os
import subprocess
import sys
import urllib.request


def etcdctl(*args, endpoints=None):
    # etcdctl 3.4 refuses --endpoints while ETCDCTL_ENDPOINTS is set: override the variable
    env = dict(os.environ, ETCDCTL_ENDPOINTS=endpoints) if endpoints else None
    cmd = ["etcdctl", "--command-timeout=3s", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False, env=env)
    return proc.returncode, proc.stdout


def main() -> int:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=2) as resp:
            if resp.status != 200:
                return 0
    except OSError:
        return 0  # not the primary (503), or Patroni is down: nothing to do
    rc, out = etcdctl("endpoint", "status", "-w", "json")
    if rc:
        return 0
    status = json.loads(out)[0]["Status"]
    me, leader = status["header"]["member_id"], status["leader"]
    if me != leader:
        return 0
    rc, out = etcdctl("member", "list", "-w", "json")
    if rc:
        return 0
    for member in json.loads(out).get("members", []):
        if member["ID"] == me or not member.get("clientURLs"):
            continue
        url = member["clientURLs"][0]
        if etcdctl("endpoint", "health", endpoints=url)[0] == 0:
            rc, out = etcdctl("move-leader", format(member["ID"], "x"))
            print(f"etcd leader moved off the Patroni primary to {member.get('name')}: rc {rc}")
            return 0
    print("etcd leader is on the Patroni primary and no other member is healthy: left as is")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("ETCDCTL_API", "3")
    sys.exit(main())
