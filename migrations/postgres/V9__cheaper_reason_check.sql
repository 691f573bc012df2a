-- sessiond schema, version 9 (PostgreSQL): nothing changes. On SQLite this version
-- rewrites the CHECK on `revoke_reason` from an IN list to a chain of equalities, which
-- SQLite evaluates faster for each revoked row; PostgreSQL's IN list is cheap as it is.
-- The version exists so that both schemas keep one numbering.
SELECT 1;
