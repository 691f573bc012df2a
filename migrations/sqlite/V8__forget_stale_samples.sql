-- sessiond schema, version 8: the planner forgets samples of a token table that is gone.
--
-- Versions 6 and 7 rebuilt the token table and set the planner's figures for it in
-- sqlite_stat1 by hand (see V6__tokens_by_user.sql). Samples that an operator's ANALYZE
-- had left in sqlite_stat4 outlived both rebuilds: they describe the old table (text ids,
-- its own row counts) and, read beside the hand-set figures, can turn a revoke from the
-- index over live tokens to the table's key, walking each user's revoked history. They
-- go; the figures of sqlite_stat1 stay; the next ANALYZE writes both afresh.
-- (`ANALYZE sqlite_master` makes sure the table exists, as in version 6.)
ANALYZE sqlite_master;
DELETE FROM sqlite_stat4 WHERE tbl = 'refresh_tokens';
