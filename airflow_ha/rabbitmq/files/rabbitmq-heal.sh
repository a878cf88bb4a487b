#!/bin/bash
# rabbitmq-heal SERVICE AMQP_PORT DIST_PORT PEER_ADDRESS... — run by
# airflow_ha-rabbitmq-heal.timer every few seconds.
#
# After a network partition RabbitMQ heals by restarting the rabbit app inside
# its running Erlang VM (autoheal's losers; pause_minority's paused side). On
# Debian 12's RabbitMQ 3.10.8 that in-VM restart can crash
# (rabbit_mgmt_external_stats: case_clause in rabbit_net:dist_info while two
# distribution connections to one peer exist right after the heal), and the
# node then stays up with its app stopped, for good: seen in the partition
# drill. systemd does not notice (the VM runs). This restarts the service when
# the VM runs, the app has been stopped for at least GRACE seconds, and a
# majority of the broker nodes is reachable, so a node that pauses because it
# really is in a minority is left alone.
set -u
GRACE=30
STAMP=${RABBITMQ_HEAL_STAMP:-/run/airflow_ha-rabbitmq-heal.down}  # tests point it elsewhere
service=$1 amqp=$2 dist=$3
shift 3

reachable() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# The app serves AMQP on loopback while it runs: the cheap, common path.
if reachable 127.0.0.1 "$amqp"; then rm -f "$STAMP"; exit 0; fi
# Not started, starting, or stopping: systemd's business, not ours.
systemctl is-active -q "$service" || { rm -f "$STAMP"; exit 0; }
epmd -names 2>/dev/null | grep -q '^name rabbit ' || { rm -f "$STAMP"; exit 0; }

up=1
for peer in "$@"; do
    reachable "$peer" "$dist" && up=$((up + 1))
done
total=$(($# + 1))
if [ $((up * 2)) -le "$total" ]; then
    rm -f "$STAMP"  # a minority: pausing is right
    exit 0
fi
now=$(date +%s)
[ -f "$STAMP" ] || { echo "$now" >"$STAMP"; exit 0; }
since=$(cat "$STAMP")
[ $((now - since)) -ge "$GRACE" ] || exit 0
if rabbitmq-diagnostics -q check_running >/dev/null 2>&1; then rm -f "$STAMP"; exit 0; fi
echo "rabbit app stopped for $((now - since)) s with $up of $total broker nodes reachable: restarting $service"
rm -f "$STAMP"
systemctl restart "$service"
