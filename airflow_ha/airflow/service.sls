# airflow.service: not built yet.
