-- sessiond schema, version 5 (PostgreSQL): secrets shared by every process of a
-- deployment; with auth.jwt_secret empty, the generated JWT secret is kept here, so that
-- every process signs and verifies with the same one.
CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
