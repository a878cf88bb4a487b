"""airflow_ha_check: 8 independent tasks that report the host that ran them.

Used by the airflow_ha tests and `make bench` (it is not installed by the
formula): copy it into one node's dags folder, csync2 spreads it, trigger it,
then look at the task instances' hostnames - with CeleryExecutor they spread
over the workers of several nodes. Works with Airflow 3.x and 2.11.
"""

import socket
import time
from datetime import datetime, timedelta

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task

PARALLEL = 8


@dag(
    dag_id="airflow_ha_check",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_tasks=PARALLEL,
    # a node lost mid-run (HA tests kill nodes) is retried on another worker
    default_args={"retries": 2, "retry_delay": timedelta(seconds=5)},
    tags=["airflow_ha"],
)
def airflow_ha_check():
    @task
    def where(i: int) -> str:
        time.sleep(3)  # long enough for the tasks to overlap across workers
        return f"{i}@{socket.gethostname()}"

    @task
    def summary(hosts: list) -> str:
        return ",".join(sorted(hosts))

    summary([where.override(task_id=f"where_{i}")(i) for i in range(PARALLEL)])


airflow_ha_check()
