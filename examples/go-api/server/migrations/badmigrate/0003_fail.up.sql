-- Release badmigrate: fails on purpose (test fixture). The file runs as one statement
-- batch, so PostgreSQL rolls the ALTER back with it; `server migrate` then resets
-- schema_migrations to the previous version and exits 1.
ALTER TABLE events ADD COLUMN doomed integer;
SELECT 1 / 0;
