-- sessiond schema, version 8 (PostgreSQL): nothing changes. On SQLite this version
-- drops planner samples (sqlite_stat4) of the token table as it was before versions 6
-- and 7 rebuilt it; PostgreSQL's statistics are its own (ANALYZE, autovacuum). The
-- version exists so that both schemas keep one numbering.
SELECT 1;
