-- Least-privilege PostgreSQL roles of the services (docs/security.md). Per service:
--
--   migration role  owns the service's database and everything in it; the service uses
--                   it at start-up only (--database-migration-url) to migrate, then grants
--                   the runtime role row access to the tables and closes the connection.
--   runtime role    the service's --database-url: reads and writes rows, owns nothing, so
--                   it cannot create, alter or drop tables; it may connect to its own
--                   database only, and may not make temporary tables.
--
-- The schema registry (Apicurio, dev stack only: compose runs Confluent's, which keeps
-- its schemas in Kafka) creates its own tables at every start, so it has one role, the
-- owner of its database and of nothing else: no superuser, no other database.
--
-- Run by psql as a superuser, with the variables
--   order_db, order_owner, order_owner_password, order_app, order_app_password,
--   consumer_db, consumer_owner, consumer_owner_password, consumer_app, consumer_app_password
--   registry_db, registry_owner, registry_owner_password   (registry_db empty: no registry)
-- (scripts/dev-up.sh and deploy/postgres/init/02-service-roles.sh set them). The
-- databases exist. Idempotent: a second run resets the passwords and rights, and hands
-- objects an earlier admin-run stack created over to the migration role.
\set ON_ERROR_STOP on

SELECT format('CREATE ROLE %I', name)
FROM unnest(ARRAY[:'order_owner', :'order_app', :'consumer_owner', :'consumer_app']) AS name
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = name) \gexec

ALTER ROLE :"order_owner" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'order_owner_password';
ALTER ROLE :"order_app" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'order_app_password';
ALTER ROLE :"consumer_owner" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'consumer_owner_password';
ALTER ROLE :"consumer_app" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'consumer_app_password';

SELECT :'registry_db' <> '' AS with_registry \gset
\if :with_registry
SELECT format('CREATE ROLE %I', :'registry_owner')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'registry_owner') \gexec
ALTER ROLE :"registry_owner" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'registry_owner_password';
ALTER DATABASE :"registry_db" OWNER TO :"registry_owner";
REVOKE ALL ON DATABASE :"registry_db" FROM PUBLIC;
\connect :"registry_db"
SELECT format('ALTER TABLE public.%I OWNER TO %I', c.relname, :'registry_owner')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') \gexec
SELECT format('ALTER SEQUENCE public.%I OWNER TO %I', c.relname, :'registry_owner')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_depend d ON d.objid = c.oid AND d.deptype IN ('a', 'i')
WHERE n.nspname = 'public' AND c.relkind = 'S' AND d.objid IS NULL \gexec
\endif

-- Each database belongs to its migration role (so it may create the service's schema,
-- and in PostgreSQL 15+ create in `public`); only the service's runtime role may connect
-- besides, and nobody but the owner may make temporary tables.
ALTER DATABASE :"order_db" OWNER TO :"order_owner";
REVOKE ALL ON DATABASE :"order_db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"order_db" TO :"order_app";

ALTER DATABASE :"consumer_db" OWNER TO :"consumer_owner";
REVOKE ALL ON DATABASE :"consumer_db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"consumer_db" TO :"consumer_app";

-- Objects an admin-run stack made before these roles existed move to the migration
-- role: the order service's schema with its tables (a table takes its indexes and owned
-- sequences along), and the consumer's tables in `public` of its database.
\connect :"order_db"
SELECT format('ALTER SCHEMA order_service OWNER TO %I', :'order_owner')
FROM pg_namespace WHERE nspname = 'order_service' \gexec
SELECT format('ALTER TABLE order_service.%I OWNER TO %I', c.relname, :'order_owner')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'order_service' AND c.relkind IN ('r', 'p') \gexec

\connect :"consumer_db"
SELECT format('ALTER TABLE public.%I OWNER TO %I', c.relname, :'consumer_owner')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') \gexec
