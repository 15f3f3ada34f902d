-- upay schema, PostgreSQL. The events table has the postgres-es layout (its
-- inserts name their columns, so they keep working) plus:
--   global_position  the recording order; writers hold one advisory lock from
--                    their first insert to commit, so positions commit in order
--                    and a reader after a checkpoint never skips a late commit;
--   recorded_at      when the row was written;
--   chain_hash       SHA-256 chaining the row to the one before it.
CREATE SEQUENCE IF NOT EXISTS events_global_position_seq;

CREATE TABLE IF NOT EXISTS events
(
    aggregate_type  text                         NOT NULL,
    aggregate_id    text                         NOT NULL,
    sequence        bigint CHECK (sequence >= 0) NOT NULL,
    event_type      text                         NOT NULL,
    event_version   text                         NOT NULL,
    payload         jsonb                        NOT NULL,
    metadata        jsonb                        NOT NULL,
    global_position bigint                       NOT NULL DEFAULT nextval('events_global_position_seq'),
    recorded_at     timestamptz                  NOT NULL DEFAULT clock_timestamp(),
    chain_hash      text,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE UNIQUE INDEX IF NOT EXISTS events_global_position ON events (global_position);
-- Rows still to be chained (only those the single-command path wrote).
CREATE INDEX IF NOT EXISTS events_unsealed ON events (global_position) WHERE chain_hash IS NULL;

-- Every insert, ours or postgres-es's, first takes the log lock (once per
-- statement), so sequence values are drawn and committed in one order.
CREATE OR REPLACE FUNCTION upay_events_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7261001);
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER upay_events_lock BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION upay_events_lock();

-- The idempotency key of every input row and what became of it.
CREATE TABLE IF NOT EXISTS inputs
(
    event_id        text   PRIMARY KEY,
    digest          text   NOT NULL,
    outcome         text   NOT NULL,
    global_position bigint NOT NULL
);

-- Secrets stay out of the event log.
CREATE TABLE IF NOT EXISTS merchant_secrets
(
    merchant_id     text PRIMARY KEY,
    notice_password text NOT NULL
);

CREATE TABLE IF NOT EXISTS notice_outbox
(
    notice_no   text PRIMARY KEY,
    merchant_id text    NOT NULL,
    email       text    NOT NULL,
    payout_date text    NOT NULL,
    zip         bytea   NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text,
    sent_at     text
);

-- The last sealed row of the hash chain.
CREATE TABLE IF NOT EXISTS log_head
(
    id       integer PRIMARY KEY CHECK (id = 1),
    position bigint  NOT NULL,
    hash     text    NOT NULL
);
