#!/bin/sh
# Run once by the postgres image, when its volume is empty (/docker-entrypoint-initdb.d/):
# makes `tributary`, the role that owns the schema, and gives it the database. It may create
# roles (db-provision makes each service's role as it) and nothing else: not a superuser, no
# other database. The services' roles are db-provision's to make, on every start, so a
# changed password in .env is applied by the next `docker-compose up`.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v owner_password="$POSTGRES_OWNER_PASSWORD" <<'SQL'
CREATE ROLE tributary LOGIN CREATEROLE PASSWORD :'owner_password';
ALTER DATABASE tributary OWNER TO tributary;
ALTER SCHEMA public OWNER TO tributary;
SQL
