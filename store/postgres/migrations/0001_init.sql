-- Orders, their append-only history and the transactional outbox, as in
-- the SQLite store's schema (store/migrations) up to its 0002, in one file:
-- no PostgreSQL database predates it.
--
-- Times are BIGINT unix milliseconds (UTC), NULL for "not set", as in
-- SQLite: the saga compares and orders them, both stores then keep the
-- same precision, and a timestamptz would add microseconds that the
-- other store drops. Integers are BIGINT, as SQLite's INTEGER and Go's
-- int are 64 bits.

CREATE TABLE orders (
	-- A small integer key keeps history rows and indexes small; the
	-- public key is out_order_id.
	id                   BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	out_order_id         TEXT    NOT NULL UNIQUE,
	mg_id                TEXT    NOT NULL,
	room_id              TEXT    NOT NULL,
	from_uid             TEXT    NOT NULL,
	provider             TEXT    NOT NULL,
	amount               BIGINT  NOT NULL,
	intent               BYTEA,
	intent_subject       TEXT    NOT NULL,
	body_hash            TEXT    NOT NULL,
	state                TEXT    NOT NULL,
	step                 TEXT    NOT NULL,
	seq                  BIGINT  NOT NULL,
	attempt              BIGINT  NOT NULL,
	next_run_at          BIGINT, -- NULL when nothing is scheduled
	sud_order_id         TEXT    NOT NULL,
	bill_no              TEXT    NOT NULL,
	pay_generation       BIGINT  NOT NULL,
	has_baseline         BOOLEAN NOT NULL,
	baseline_balance     BIGINT  NOT NULL,
	baseline_save_amt    BIGINT  NOT NULL,
	baseline_cost_sum    BIGINT  NOT NULL,
	has_pay_balance      BOOLEAN NOT NULL,
	pay_balance          BIGINT  NOT NULL,
	used_gen_amt         BIGINT  NOT NULL,
	debited_at           BIGINT,
	sud_status           TEXT    NOT NULL,
	ordered_at           BIGINT,
	first_pay_at         BIGINT,
	pay_unknown          BOOLEAN NOT NULL,
	baseline_gen_balance BIGINT  NOT NULL,
	error_code           TEXT    NOT NULL,
	error                TEXT    NOT NULL,
	created_at           BIGINT  NOT NULL,
	updated_at           BIGINT  NOT NULL,
	version              BIGINT  NOT NULL
);

-- Due pages through scheduled orders by (next_run_at, id); terminal ones
-- stay out of the index so that it stays as small as the work waiting.
CREATE INDEX orders_due ON orders (next_run_at, id) WHERE next_run_at IS NOT NULL;

-- Due by step and NextDue by step: one step's scheduled orders, so that
-- 50k orders waiting in confirmation never stand in the way of a new
-- order's step. Stats counts scheduled orders by step from it.
CREATE INDEX orders_step ON orders (step, next_run_at, id) WHERE next_run_at IS NOT NULL;

-- Stats counts by state. It holds no time: every step rewrites
-- updated_at, and an index on it would be rewritten with it.
CREATE INDEX orders_state ON orders (state);

-- PruneTerminal finds old finished orders here; an order enters it once,
-- when it ends.
CREATE INDEX orders_finished ON orders (updated_at) WHERE next_run_at IS NULL;

-- The lines of each version of an order (see the SQLite schema).
CREATE TABLE history (
	order_id   BIGINT  NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
	version    BIGINT  NOT NULL,
	line       BIGINT  NOT NULL,
	at         BIGINT  NOT NULL,
	state      TEXT    NOT NULL,
	step       TEXT    NOT NULL,
	attempt    BIGINT  NOT NULL,
	error_code TEXT    NOT NULL,
	error      TEXT    NOT NULL,
	detail     TEXT    NOT NULL,
	PRIMARY KEY (order_id, version, line)
);

-- Outbox ids come from this sequence, but only while the inserting
-- transaction holds the outbox lock until it commits (see outbox.go), so
-- that ids are handed out in commit order and the relay's cursor is safe.
-- A sequence never reuses a value, so an id the relay saw always means
-- the same message.
CREATE TABLE outbox (
	id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	subject    TEXT    NOT NULL,
	msg_id     TEXT    NOT NULL,
	header     TEXT, -- JSON object, NULL when there are no headers
	data       BYTEA,
	created_at BIGINT  NOT NULL
);
