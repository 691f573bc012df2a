-- sessiond schema, version 5: secrets shared by every process of a deployment. Used on
-- PostgreSQL only (the generated JWT secret); on SQLite that secret stays in a 0600 file
-- beside the database, and this table stays empty.
CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
