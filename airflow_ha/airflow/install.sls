# airflow.install: not built yet.
