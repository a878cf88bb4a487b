# airflow.clean: not built yet.
