-- Orders, their append-only history and the transactional outbox.
-- Times are INTEGER unix milliseconds (UTC); NULL means "not set".

CREATE TABLE orders (
	-- A small integer key keeps history rows and indexes small; the
	-- public key is out_order_id.
	id                INTEGER PRIMARY KEY,
	out_order_id      TEXT    NOT NULL UNIQUE,
	mg_id             TEXT    NOT NULL,
	room_id           TEXT    NOT NULL,
	from_uid          TEXT    NOT NULL,
	provider          TEXT    NOT NULL,
	amount            INTEGER NOT NULL,
	intent            BLOB,
	intent_subject    TEXT    NOT NULL,
	body_hash         TEXT    NOT NULL,
	state             TEXT    NOT NULL,
	step              TEXT    NOT NULL,
	seq               INTEGER NOT NULL,
	attempt           INTEGER NOT NULL,
	next_run_at       INTEGER, -- NULL when nothing is scheduled
	sud_order_id      TEXT    NOT NULL,
	bill_no           TEXT    NOT NULL,
	pay_generation    INTEGER NOT NULL,
	has_baseline      INTEGER NOT NULL,
	baseline_balance  INTEGER NOT NULL,
	baseline_save_amt INTEGER NOT NULL,
	baseline_cost_sum INTEGER NOT NULL,
	has_pay_balance   INTEGER NOT NULL,
	pay_balance       INTEGER NOT NULL,
	used_gen_amt      INTEGER NOT NULL,
	debited_at        INTEGER,
	error_code        TEXT    NOT NULL,
	error             TEXT    NOT NULL,
	created_at        INTEGER NOT NULL,
	updated_at        INTEGER NOT NULL,
	version           INTEGER NOT NULL
);

-- Due and NextDue read only scheduled orders; terminal ones stay out of
-- the index so that it stays as small as the work waiting.
CREATE INDEX orders_due ON orders (next_run_at) WHERE next_run_at IS NOT NULL;

-- Due reads one step's due orders from this index (so that 50k orders
-- waiting in confirmation never stand in the way of a new order's step),
-- and Stats counts scheduled orders by step from it alone. Same partial
-- condition: it costs nothing for finished orders.
CREATE INDEX orders_step ON orders (step, next_run_at) WHERE next_run_at IS NOT NULL;

-- Stats counts by state from this index alone. It holds no time: every
-- step rewrites updated_at, and an index on it would be rewritten with it.
CREATE INDEX orders_state ON orders (state);

-- PruneTerminal finds old finished orders here. Only unscheduled rows are
-- in it, so a running order's steps never touch it; an order enters it
-- once, when it ends.
CREATE INDEX orders_finished ON orders (updated_at) WHERE next_run_at IS NULL;

-- The lines of each version of an order: Accept writes version 1 and
-- every applied transition the next one, with a line per step it covers,
-- so (order_id, version, line) orders the history and needs no rowid or
-- second index.
CREATE TABLE history (
	order_id   INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
	version    INTEGER NOT NULL,
	line       INTEGER NOT NULL,
	at         INTEGER NOT NULL,
	state      TEXT    NOT NULL,
	step       TEXT    NOT NULL,
	attempt    INTEGER NOT NULL,
	error_code TEXT    NOT NULL,
	error      TEXT    NOT NULL,
	detail     TEXT    NOT NULL,
	PRIMARY KEY (order_id, version, line)
) WITHOUT ROWID;

-- AUTOINCREMENT: ids are never reused, so an id the relay saw always
-- means the same message.
CREATE TABLE outbox (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	subject    TEXT    NOT NULL,
	msg_id     TEXT    NOT NULL,
	header     TEXT, -- JSON object, NULL when there are no headers
	data       BLOB,
	created_at INTEGER NOT NULL
);
