"""Shared pytest setup for every tier.

pytest-salt-factories binds its log server and event listener to 0.0.0.0 by
default; this project only listens on loopback, so both are moved to
127.0.0.1 here."""

import logging

import pytest


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionstart(session):
    log_server = session.config.pluginmanager.get_plugin("saltfactories-log-server")
    if log_server is not None:
        log_server.log_host = "127.0.0.1"
    yield


# Salt's logging handlers flush after pytest closed the streams at exit and
# print "--- Logging error --- I/O operation on closed file" (harmless); keep the
# test output ending on pytest's summary.
logging.raiseExceptions = False


@pytest.fixture(scope="session")
def etcd_tls(tmp_path_factory):
    """The pillar value of airflow_ha:etcd:tls for pillar.example's three
    nodes: a CA and one certificate per node, made with cryptography
    (test/lab/lab_pki.py) once per session."""
    from testlib import load_lab_pki

    nodes = {"node1": "10.77.0.11", "node2": "10.77.0.12", "node3": "10.77.0.13"}
    return load_lab_pki().etcd_tls_pillar(nodes, tmp_path_factory.mktemp("etcd-pki"))
