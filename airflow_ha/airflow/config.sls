# airflow.config: not built yet.
