-- upay schema, PostgreSQL. The events table has the postgres-es layout (its
-- inserts name their columns, so they keep working; its jsonb parameters are
-- cast to json on insert) plus:
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
    payload         json                         NOT NULL,
    metadata        json                         NOT NULL,
    global_position bigint                       NOT NULL DEFAULT nextval('events_global_position_seq'),
    recorded_at     timestamptz                  NOT NULL DEFAULT clock_timestamp(),
    chain_hash      text,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
-- The payload is `json`, not postgres-es's `jsonb`: PostgreSQL keeps the text
-- upay wrote (the canonical text the chain hash covers), so a reader checks
-- the hash without parsing and a read sends the text as stored instead of
-- rendering it again (docs/adr/0003). A store created with jsonb is converted.
DO $$
BEGIN
    IF (SELECT data_type FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = 'events' AND column_name = 'payload') = 'jsonb' THEN
        ALTER TABLE events ALTER COLUMN payload TYPE json USING payload::json,
                           ALTER COLUMN metadata TYPE json USING metadata::json;
    END IF;
END $$;
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

-- The nightly batch's checkpoint: the folded state after a position of the log
-- (with that row's chain hash, to notice a log changed under it). A cache of
-- the log, never a fact: deleting it only makes the next run fold everything.
CREATE TABLE IF NOT EXISTS checkpoints
(
    name       text        PRIMARY KEY,
    position   bigint      NOT NULL,
    chain_hash text,
    data       text        NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now()
);
-- Written whole every night and read whole the next: kept out of line but not
-- compressed (pglz took about twice as long as the write itself). Altered only
-- once: ALTER TABLE would wait for every open transaction on the table.
DO $$
BEGIN
    IF (SELECT attstorage FROM pg_attribute WHERE attrelid = 'checkpoints'::regclass AND attname = 'data') <> 'e' THEN
        ALTER TABLE checkpoints ALTER COLUMN data SET STORAGE EXTERNAL;
    END IF;
END
$$;

-- The parts of a checkpoint kept apart from it ('settle/contracts',
-- 'settle/statements'): read only by a run that needs them, rewritten only when
-- they change. The checkpoint names each by its SHA-256; a part that is not the
-- one named is not used.
CREATE TABLE IF NOT EXISTS checkpoint_parts
(
    name     text   PRIMARY KEY,
    position bigint NOT NULL,
    sha256   text   NOT NULL,
    data     text   NOT NULL
);
DO $$
BEGIN
    IF (SELECT attstorage FROM pg_attribute WHERE attrelid = 'checkpoint_parts'::regclass AND attname = 'data') <> 'e' THEN
        ALTER TABLE checkpoint_parts ALTER COLUMN data SET STORAGE EXTERNAL;
    END IF;
END
$$;
