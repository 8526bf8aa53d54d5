-- Ownership among several workers (issue 15; see store/shared.go and
-- docs/architecture.md, "Ownership").
--
-- One heartbeat row per worker process, not per order: orders waiting in
-- confirmation cost no writes. Lease times are the server's clock
-- (clock_timestamp()), one clock for every worker whatever their own
-- machines say.
CREATE TABLE workers (
	id         TEXT        PRIMARY KEY, -- random, fresh at every register
	host       TEXT        NOT NULL,
	started_at TIMESTAMPTZ NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL
);

-- The worker an order belongs to; NULL: any worker may claim it (its
-- owner was rescued or released, or a tool without a lease wrote it). No
-- foreign key: a rescue removes the worker and clears its orders in one
-- transaction, and a key check would lock the worker row on every write.
-- Existing orders have no owner: the first workers claim them.
ALTER TABLE orders ADD COLUMN owner TEXT;

-- The worker whose relay publishes an outbox row: the one that committed
-- it, so that one order's messages go out through one relay, in order;
-- NULL once that worker is gone (any relay takes it).
ALTER TABLE outbox ADD COLUMN owner TEXT;

-- A worker's own due orders (Due, NextDue, and Release and Rescue, which
-- hand over scheduled orders), with and without a step.
CREATE INDEX orders_owner_due ON orders (owner, next_run_at, id) WHERE next_run_at IS NOT NULL;
CREATE INDEX orders_owner_step ON orders (owner, step, next_run_at, id) WHERE next_run_at IS NOT NULL;

-- Orders any worker may claim, soonest first. Claim passes its time as a
-- parameter: with clock_timestamp() in the comparison the planner filters
-- instead of using this index.
CREATE INDEX orders_orphans ON orders (next_run_at, id) WHERE owner IS NULL AND next_run_at IS NOT NULL;
