# airflow: filled by its component work; the formula includes it already.
include:
  - airflow_ha.validate
