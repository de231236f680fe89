-- Run once by the postgres image on its first start (docker-compose.yml), as the
-- orderflow user: one database per service, as in scripts/dev-up.sh.
CREATE DATABASE orderflow_registry OWNER orderflow;
CREATE DATABASE orderflow_consumer OWNER orderflow;
CREATE DATABASE orderflow_producer OWNER orderflow;
