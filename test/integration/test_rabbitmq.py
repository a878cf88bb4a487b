"""RabbitMQ: one cluster of every broker node, all running; vhost and user."""

import json

import pytest


@pytest.fixture(scope="module")
def brokers(role_nodes, require_unit, ah):
    names = role_nodes("broker")
    require_unit(ah["rabbitmq"]["service"], names)
    return names


def test_rabbitmq_active_and_enabled(nodes, brokers, ah):
    for name in brokers:
        svc = nodes[name].service(ah["rabbitmq"]["service"])
        assert svc.is_running and svc.is_enabled, f"rabbitmq on {name}"


def test_one_cluster_all_running(nodes, brokers):
    want = sorted(f"rabbit@{n}" for n in brokers)
    for name in brokers:
        out = nodes[name].check_output("rabbitmqctl cluster_status --formatter json")
        status = json.loads(out)
        assert sorted(status["running_nodes"]) == want, f"{name}: {status['running_nodes']}"
        disc = status.get("disk_nodes") or status.get("nodes", {}).get("disc", [])
        assert sorted(disc) == want, f"{name} cluster members: {disc}"
        assert not status.get("partitions"), f"{name} reports partitions"


def test_vhost_and_user(nodes, brokers, ah):
    rmq = ah["rabbitmq"]
    host = nodes[brokers[0]]
    vhosts = json.loads(host.check_output("rabbitmqctl list_vhosts name --formatter json"))
    assert rmq["vhost"] in [v["name"] for v in vhosts]
    users = json.loads(host.check_output("rabbitmqctl list_users --formatter json"))
    names = [u["user"] for u in users]
    assert rmq["user"] in names
    assert "guest" not in names, "the default guest user is still there"


def test_cookie_private(nodes, brokers, ah):
    path = f"{ah['rabbitmq']['home']}/.erlang.cookie"
    for name in brokers:
        f = nodes[name].file(path)
        assert f.user == "rabbitmq" and f.mode == 0o400, f"{path} on {name}: {oct(f.mode)}"
