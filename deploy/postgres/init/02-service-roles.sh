#!/bin/sh
# Run once by the postgres image on its first start (docker-compose.yml), after
# 01-create-databases.sql: the services' least-privilege roles
# (/etc/orderflow/service-roles.sql, that is deploy/postgres/service-roles.sql), with the
# passwords of .env. The schema registry of compose keeps its schemas in Kafka: no role.
set -eu
psql -X -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v order_db=orderflow_producer -v consumer_db=orderflow_consumer -v registry_db= \
    -v order_owner=orderflow_order_owner -v order_owner_password="$ORDER_MIGRATION_DB_PASSWORD" \
    -v order_app=orderflow_order_app -v order_app_password="$ORDER_SERVICE_DB_PASSWORD" \
    -v consumer_owner=orderflow_consumer_owner -v consumer_owner_password="$CONSUMER_MIGRATION_DB_PASSWORD" \
    -v consumer_app=orderflow_consumer_app -v consumer_app_password="$CONSUMER_DB_PASSWORD" \
    -v registry_owner= -v registry_owner_password= \
    -f /etc/orderflow/service-roles.sql
