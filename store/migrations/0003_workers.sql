-- The workers of the ownership seam (issue 15). SQLite has one writer
-- process (the lock file), so it has one worker: the row records who holds
-- the database (host, since when) for operators. Orders carry no owner
-- column here: every order is the one registered worker's.
CREATE TABLE workers (
	id         TEXT    PRIMARY KEY,
	host       TEXT    NOT NULL,
	started_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);
