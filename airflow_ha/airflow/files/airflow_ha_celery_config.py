"""Celery settings of airflow_ha ([celery] celery_config_options points here).

Airflow's defaults plus quorum queues: RabbitMQ 4 has no classic mirrored
queues, and a quorum queue survives the loss of a broker node. Celery >= 5.5
declares its task queues as quorum queues with these two settings and turns
off global QoS, which quorum queues do not support.
"""

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

CELERY_CONFIG = dict(DEFAULT_CELERY_CONFIG)
CELERY_CONFIG["task_default_queue_type"] = "quorum"
CELERY_CONFIG["worker_detect_quorum_queues"] = True
# A connect to a dead broker node hangs (no reset from a dead host): give up
# after 2 s and try the next URL of the failover list at once. kombu's total
# budget for those tries defaults to the per-connect timeout with 2 s pauses,
# so a publisher whose failover cycle stood at a dead node never reached a
# live one (task-recovery drill: "Error sending Celery workload: timed out").
# [celery] operation_timeout (airflow.cfg, 10 s) bounds the whole publish.
CELERY_CONFIG["broker_connection_timeout"] = 2
CELERY_CONFIG["broker_transport_options"] = {
    **(DEFAULT_CELERY_CONFIG.get("broker_transport_options") or {}),
    "confirm_publish": True,
    "max_retries": 4,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
    "connect_retries_timeout": 8,
}

# Native delayed delivery (Celery >= 5.5, on whenever queues are quorum; no
# setting turns it off) declares exchanges on EVERY broker URL of the failover
# list each time a worker's consumer (re)starts, 3 tries with sleeps per URL,
# and the worker consumes nothing meanwhile. With one broker node dead that
# held a re-queued task for 23 s (task-recovery drill: "Failed to declare
# exchanges and queues for ...@node2 ... No route to host"). It only serves
# ETA/countdown tasks, which Airflow's Celery executor never sends: skip it.
try:
    from celery.worker.consumer.delayed_delivery import DelayedDelivery

    DelayedDelivery.include_if = lambda self, consumer: False
except ImportError:  # Celery < 5.5 has no such step
    pass
