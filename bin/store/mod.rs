//! The event store: one `events` table (the postgres-es / sqlite-es layout plus
//! `global_position`, `recorded_at`, `chain_hash`) behind one interface, on
//! PostgreSQL or SQLite. The single-command path goes through postgres-es /
//! sqlite-es (merchant imports); the bulk paths (event ingest, the batch) use our
//! own batched sqlx reads and writes over the same table.

mod pg;
mod sqlite;
mod sqlite_rows;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// The chain's value before the first row.
pub const CHAIN_GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{0}")]
    BadUrl(String),
    #[error("another writer changed stream {0} first")]
    Conflict(String),
    #[error("events were recorded after position {0} while this step computed")]
    Stale(i64),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// An error of SQLite's C API (the bulk inserts of `sqlite_rows`).
    #[error("database error: {0}")]
    Sqlite(String),
    #[error("the stored history is inconsistent: {0}")]
    Corrupt(String),
}

/// A row of the events table as read back.
#[derive(Clone, Debug, Default)]
pub struct RecordedEvent {
    pub position: i64,
    pub aggregate_type: Name,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: Name,
    pub event_version: Name,
    pub payload: String,
    pub chain_hash: Option<String>,
}

impl RecordedEvent {
    /// `text` into `field`, reusing its allocation.
    pub(crate) fn set(field: &mut String, text: &str) {
        field.clear();
        field.push_str(text);
    }

    pub(crate) fn set_hash(&mut self, hash: Option<&str>) {
        match (hash, &mut self.chain_hash) {
            (Some(h), Some(kept)) => Self::set(kept, h),
            (Some(h), kept @ None) => *kept = Some(h.to_string()),
            (None, kept) => *kept = None,
        }
    }
}

/// An aggregate type, event type or version as read: one of the few names
/// upay writes costs no allocation per row (a long replay reads millions).
pub type Name = std::borrow::Cow<'static, str>;

/// `text` as a `Name`: borrowed when it is one of the names upay writes
/// (shared by every row that carries them), owned otherwise. A `match`, not a
/// search: a replay asks three times a row.
pub fn name(text: &str) -> Name {
    let known: &'static str = match text {
        "Payment" => "Payment",
        "1.0" => "1.0",
        "Captured" => "Captured",
        "Authorized" => "Authorized",
        "SaleCancelled" => "SaleCancelled",
        "AuthorizationVoided" => "AuthorizationVoided",
        "AuthorizationDeclined" => "AuthorizationDeclined",
        "ChargedBack" => "ChargedBack",
        "ChargebackReversed" => "ChargebackReversed",
        "Refusal" => "Refusal",
        "EventRefused" => "EventRefused",
        "Settlement" => "Settlement",
        "StatementClosed" => "StatementClosed",
        "SettlementRun" => "SettlementRun",
        "SettlementRunCompleted" => "SettlementRunCompleted",
        "Notice" => "Notice",
        "NoticeIssued" => "NoticeIssued",
        "TransferFile" => "TransferFile",
        "TransferFileWritten" => "TransferFileWritten",
        "Merchant" => "Merchant",
        "MerchantRegistered" => "MerchantRegistered",
        "MerchantContractChanged" => "MerchantContractChanged",
        "NoticePasswordChanged" => "NoticePasswordChanged",
        "1" => "1",
        _ => return Name::Owned(text.to_string()),
    };
    Name::Borrowed(known)
}

/// A row to write. Its payload is the canonical JSON text of the event (keys
/// sorted, no spaces), stored as is: the chain hash covers that text, and a
/// reader checks the hash over the stored bytes without parsing them.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: &'static str,
    pub event_version: &'static str,
    pub payload: String,
}

/// The version of every event upay writes today.
pub const EVENT_VERSION: &str = "1.0";

impl NewEvent {
    /// An event serialised through a JSON value, whose text is canonical
    /// whatever the order of the type's fields.
    pub fn json(aggregate_type: &'static str, aggregate_id: String, sequence: i64, event_type: &'static str, payload: &impl serde::Serialize) -> NewEvent {
        let value = serde_json::to_value(payload).expect("an event serialises");
        NewEvent {
            aggregate_type,
            aggregate_id,
            sequence,
            event_type,
            event_version: EVENT_VERSION,
            payload: canonical_json(&value),
        }
    }

    /// An event of a type that serialises canonically by itself (its fields
    /// declared in key order, which a test of each such type checks): the
    /// ingest path, written without the detour through a JSON value.
    pub fn canonical(aggregate_type: &'static str, aggregate_id: String, sequence: i64, event_type: &'static str, payload: &impl serde::Serialize) -> NewEvent {
        let text = serde_json::to_string(payload).expect("an event serialises");
        debug_assert_eq!(
            text,
            canonical_json(&serde_json::to_value(payload).expect("an event serialises")),
            "{event_type} does not serialise canonically: declare its fields in key order"
        );
        NewEvent {
            aggregate_type,
            aggregate_id,
            sequence,
            event_type,
            event_version: EVENT_VERSION,
            payload: text,
        }
    }
}

/// An input row's idempotency record.
#[derive(Clone, Debug)]
pub struct NewInput {
    pub event_id: String,
    pub digest: String,
    pub outcome: String,
}

/// What a write expects of the log, checked under the log lock: each stream at
/// a given last sequence (0 = empty), and, with `quiet_since`, no transaction or
/// merchant event recorded after that position (what the writer computed from
/// is still the whole truth). Otherwise the write is refused whole.
#[derive(Clone, Debug, Default)]
pub struct StreamGuard {
    pub streams: Vec<(&'static str, String, i64)>,
    pub quiet_since: Option<i64>,
}

pub struct OutboxItem {
    pub notice_no: String,
    pub merchant_id: String,
    pub email: String,
    pub payout_date: String,
    pub zip: Vec<u8>,
    pub attempts: i64,
}

/// Which rows a read in recording order returns, and how much of each.
#[derive(Clone, Copy, Debug, Default)]
pub struct Read<'a> {
    /// Rows after this position.
    pub after: i64,
    /// Rows recorded at or before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Only these aggregate types (all when None).
    pub types: Option<&'a [&'a str]>,
    /// Every column the chain covers, and the row's hash (the audit);
    /// otherwise what a fold needs: `event_type`, `event_version` and
    /// `chain_hash` come back empty.
    pub full: bool,
    /// Only the rows the settlement fold uses: the events that move no money
    /// (`FOLD_SKIPPED_EVENT_TYPES`) and refusals are left on the server.
    pub fold_only: bool,
}

/// The event types the settlement fold ignores (`projections::Ledger` books
/// captures, cancels, chargebacks and reversals only), left out of a
/// `fold_only` read: about half the rows of a day's traffic.
pub const FOLD_SKIPPED_EVENT_TYPES: [&str; 3] = ["Authorized", "AuthorizationDeclined", "AuthorizationVoided"];
/// The aggregate type of refusals, which the fold does not read either.
pub const REFUSAL: &str = "Refusal";

/// What a read in recording order saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadSummary {
    /// Rows handed to the caller.
    pub rows: u64,
    /// The last position of the read's range in its snapshot (rows left out by
    /// `fold_only` included), or `after` when the range is empty: the position
    /// a fold of this read has seen the log up to.
    pub last_position: i64,
}

/// A stored checkpoint (see `checkpoint_load`).
pub struct Checkpoint {
    pub position: i64,
    pub stored_hash: Option<String>,
    pub current_hash: Option<String>,
    pub data: String,
}

#[derive(Clone)]
pub enum Store {
    Pg(sqlx::PgPool),
    Lite(sqlx::SqlitePool),
}

/// The canonical text of a JSON value: keys sorted, no spaces (serde_json's
/// `Value` keeps keys in a BTreeMap).
pub fn canonical_json(v: &serde_json::Value) -> String {
    serde_json::to_string(v).expect("a JSON value serialises")
}

/// SHA-256 over the previous hash and the row's fields, in hex.
pub fn chain_hash(prev: &str, position: i64, e: &ChainFields<'_>) -> String {
    let hex = chain_hash_hex(prev, position, e);
    String::from_utf8(hex.to_vec()).expect("hex digits are ASCII")
}

/// `chain_hash` as hex digits on the stack: comparing a stored hash with it
/// costs no allocation.
fn chain_hash_hex(prev: &str, position: i64, e: &ChainFields<'_>) -> [u8; 64] {
    use std::io::Write as _;
    let mut h = Sha256::new();
    let (mut pos_buf, mut seq_buf) = ([0u8; 20], [0u8; 20]);
    let digits = |buf: &mut [u8; 20], n: i64| -> usize {
        let mut w = &mut buf[..];
        write!(w, "{n}").expect("an i64 has at most 20 characters");
        20 - w.len()
    };
    let pos_len = digits(&mut pos_buf, position);
    let seq_len = digits(&mut seq_buf, e.sequence);
    for part in [
        prev.as_bytes(),
        &pos_buf[..pos_len],
        e.aggregate_type.as_bytes(),
        e.aggregate_id.as_bytes(),
        &seq_buf[..seq_len],
        e.event_type.as_bytes(),
        e.event_version.as_bytes(),
        e.payload_canonical.as_bytes(),
    ] {
        h.update(part);
        h.update(b"\x1f");
    }
    let mut out = [0u8; 64];
    hex::encode_to_slice(h.finalize(), &mut out).expect("64 hex digits for 32 bytes");
    out
}

pub struct ChainFields<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub sequence: i64,
    pub event_type: &'a str,
    pub event_version: &'a str,
    pub payload_canonical: &'a str,
}

/// The end of the hash chain while a write (under the log lock) extends it.
pub(crate) struct Head {
    pub position: i64,
    pub hash: String,
}

/// A new row numbered and chained: the event, its position and its hash.
pub(crate) type ChainedRow<'a> = (&'a NewEvent, i64, String);

impl Head {
    /// Chains a row written without a hash; only merchant imports (the
    /// postgres-es / sqlite-es path) leave such rows, anything else was put
    /// there by hand and stops the writer.
    pub(crate) fn seal(&mut self, r: &RecordedEvent) -> Result<String, StoreError> {
        if r.aggregate_type != "Merchant" {
            return Err(StoreError::Corrupt(format!(
                "row at position {} ({} {}) was written without a hash outside upay's writers; run `upay audit replay`",
                r.position, r.aggregate_type, r.aggregate_id
            )));
        }
        if r.position <= self.position {
            return Err(StoreError::Corrupt(format!(
                "unsealed row at position {} behind the sealed head {}",
                r.position, self.position
            )));
        }
        let h = r.expected_hash(&self.hash)?;
        self.position = r.position;
        self.hash = h.clone();
        Ok(h)
    }

    /// Numbers new rows from `first` and chains them after the head.
    pub(crate) fn chain<'a>(&mut self, events: &'a [NewEvent], first: i64) -> Vec<ChainedRow<'a>> {
        let mut rows = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            let pos = first + i as i64;
            let h = chain_hash(
                &self.hash,
                pos,
                &ChainFields {
                    aggregate_type: e.aggregate_type,
                    aggregate_id: &e.aggregate_id,
                    sequence: e.sequence,
                    event_type: e.event_type,
                    event_version: e.event_version,
                    payload_canonical: &e.payload,
                },
            );
            self.hash = h.clone();
            self.position = pos;
            rows.push((e, pos, h));
        }
        rows
    }
}

impl RecordedEvent {
    pub fn payload_json(&self) -> Result<serde_json::Value, StoreError> {
        serde_json::from_str(&self.payload).map_err(|e| StoreError::Corrupt(format!("position {}: payload is not JSON: {e}", self.position)))
    }

    /// Whether `hash` is this row's chain hash after `prev`. The payload text as
    /// stored is tried first: upay's writers store the canonical text, so a
    /// check needs no parsing. Rows stored in another form (PostgreSQL's
    /// rendering of a postgres-es insert, stores of earlier versions) are
    /// checked over their canonical text.
    pub fn hash_matches(&self, prev: &str, hash: &str) -> Result<bool, StoreError> {
        let as_stored = chain_hash_hex(prev, self.position, &self.chain_fields(&self.payload));
        Ok(as_stored[..] == *hash.as_bytes() || self.expected_hash(prev)? == hash)
    }

    /// The chain hash this row should carry after `prev`.
    pub fn expected_hash(&self, prev: &str) -> Result<String, StoreError> {
        let canon = canonical_json(&self.payload_json()?);
        Ok(chain_hash(prev, self.position, &self.chain_fields(&canon)))
    }

    /// The fields the chain covers, with `payload` as the payload's text.
    fn chain_fields<'a>(&'a self, payload: &'a str) -> ChainFields<'a> {
        ChainFields {
            aggregate_type: &self.aggregate_type,
            aggregate_id: &self.aggregate_id,
            sequence: self.sequence,
            event_type: &self.event_type,
            event_version: &self.event_version,
            payload_canonical: payload,
        }
    }
}

impl Store {
    /// Opens (and on first use creates the schema of) the store at `url`:
    /// `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            sqlite::open(url, path).await.map(Store::Lite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            pg::open(url).await.map(Store::Pg)
        } else {
            Err(StoreError::BadUrl(format!(
                "--store '{url}' is neither sqlite://PATH nor postgres://USER@HOST:PORT/DB"
            )))
        }
    }

    /// Ends the store's connections: waits for the ones in use to come back,
    /// then closes them all (on SQLite the write-ahead log is then folded back
    /// into the file and removed).
    pub async fn close(&self) {
        match self {
            Store::Pg(p) => p.close().await,
            Store::Lite(p) => sqlite::close(p).await,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Store::Pg(_) => "postgres",
            Store::Lite(_) => "sqlite",
        }
    }

    /// Hands every row of `read` to `f` in recording order, in one consistent
    /// read; stops at the first error of `f`. A read that leaves nothing out
    /// must end on the last row of its snapshot, so a silently shortened read
    /// cannot pass. The row is lent: one `RecordedEvent` is filled again for
    /// each row (its strings keep their capacity), so a caller that keeps rows
    /// swaps in a spare one.
    pub async fn for_each_event<E, F>(&self, read: &Read<'_>, f: F) -> Result<ReadSummary, E>
    where
        F: FnMut(&mut RecordedEvent) -> Result<(), E>,
        E: From<StoreError>,
    {
        match self {
            Store::Pg(p) => pg::for_each_event(p, read, f).await,
            Store::Lite(p) => sqlite::for_each_event(p, read, f).await,
        }
    }

    /// The events of the given streams, ordered by stream and sequence (with what a
    /// fold needs: the version, metadata, time and hash may come back empty).
    pub async fn load_streams(&self, aggregate_type: &str, ids: &[String]) -> Result<Vec<RecordedEvent>, StoreError> {
        match self {
            Store::Pg(p) => pg::load_streams(p, aggregate_type, ids).await,
            Store::Lite(p) => sqlite::load_streams(p, aggregate_type, ids).await,
        }
    }

    /// The rows at the given positions, in position order (with what a fold
    /// needs, as `load_streams`); a position without a row is left out.
    pub async fn load_positions(&self, positions: &[i64]) -> Result<Vec<RecordedEvent>, StoreError> {
        match self {
            Store::Pg(p) => pg::load_positions(p, positions).await,
            Store::Lite(p) => sqlite::load_positions(p, positions).await,
        }
    }

    /// The ids of every stream of a type (an index range of the primary key).
    pub async fn stream_ids(&self, aggregate_type: &str) -> Result<Vec<String>, StoreError> {
        Ok(match self {
            Store::Pg(p) => pg::stream_ids(p, aggregate_type).await?,
            Store::Lite(p) => sqlite::stream_ids(p, aggregate_type).await?,
        })
    }

    /// The digests of the given event ids already recorded.
    pub async fn inputs_lookup(&self, ids: &[String]) -> Result<HashMap<String, String>, StoreError> {
        match self {
            Store::Pg(p) => pg::inputs_lookup(p, ids).await,
            Store::Lite(p) => sqlite::inputs_lookup(p, ids).await,
        }
    }

    /// Writes events and input records in one transaction, under the log lock,
    /// chaining every row (first sealing any row written by another path).
    pub async fn append(&self, events: &[NewEvent], inputs: &[NewInput], guard: &StreamGuard) -> Result<(), StoreError> {
        match self {
            Store::Pg(p) => pg::append(p, events, inputs, guard).await,
            Store::Lite(p) => sqlite::append(p, events, inputs, guard).await,
        }
    }

    /// The last position recorded (0 for an empty log): about the number of rows.
    pub async fn last_position(&self) -> Result<i64, StoreError> {
        let sql = "SELECT COALESCE(max(global_position), 0) FROM events";
        Ok(match self {
            Store::Pg(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
            Store::Lite(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
        })
    }

    /// Refreshes the planner's statistics after a bulk load (PostgreSQL), so
    /// the next night's queries are planned for the table as it is.
    pub async fn analyze(&self) -> Result<(), StoreError> {
        match self {
            Store::Pg(p) => {
                sqlx::query("ANALYZE events").execute(p).await?;
                sqlx::query("ANALYZE inputs").execute(p).await?;
            }
            Store::Lite(p) => {
                sqlx::query("PRAGMA optimize").execute(p).await?;
            }
        }
        Ok(())
    }

    /// Chains rows inserted without a hash (the postgres-es / sqlite-es path).
    pub async fn seal(&self) -> Result<(), StoreError> {
        self.append(&[], &[], &StreamGuard::default()).await
    }

    pub async fn secret(&self, merchant_id: &str) -> Result<Option<String>, StoreError> {
        match self {
            Store::Pg(p) => Ok(sqlx::query_scalar("SELECT notice_password FROM merchant_secrets WHERE merchant_id = $1")
                .bind(merchant_id)
                .fetch_optional(p)
                .await?),
            Store::Lite(p) => Ok(sqlx::query_scalar("SELECT notice_password FROM merchant_secrets WHERE merchant_id = ?")
                .bind(merchant_id)
                .fetch_optional(p)
                .await?),
        }
    }

    pub async fn put_secret(&self, merchant_id: &str, password: &str) -> Result<(), StoreError> {
        let sql = "INSERT INTO merchant_secrets (merchant_id, notice_password) VALUES ($1, $2) ON CONFLICT (merchant_id) DO UPDATE SET notice_password = excluded.notice_password";
        match self {
            Store::Pg(p) => sqlx::query(sql).bind(merchant_id).bind(password).execute(p).await?,
            Store::Lite(p) => {
                sqlx::query(&sql.replace("$1", "?1").replace("$2", "?2"))
                    .bind(merchant_id)
                    .bind(password)
                    .execute(p)
                    .await?
                    .rows_affected();
                return Ok(());
            }
        };
        Ok(())
    }

    /// Queues a notice for delivery. Queued again before it was sent (a re-run
    /// after a crash), the newer ZIP replaces the older; once sent it stays.
    pub async fn outbox_put(&self, notice_no: &str, merchant_id: &str, email: &str, payout_date: &str, zip: &[u8]) -> Result<(), StoreError> {
        let sql = "INSERT INTO notice_outbox (notice_no, merchant_id, email, payout_date, zip) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (notice_no) DO UPDATE SET zip = excluded.zip, email = excluded.email, payout_date = excluded.payout_date WHERE notice_outbox.sent_at IS NULL";
        match self {
            Store::Pg(p) => {
                sqlx::query(sql)
                    .bind(notice_no)
                    .bind(merchant_id)
                    .bind(email)
                    .bind(payout_date)
                    .bind(zip)
                    .execute(p)
                    .await?;
            }
            Store::Lite(p) => {
                sqlx::query(&lite_params(sql))
                    .bind(notice_no)
                    .bind(merchant_id)
                    .bind(email)
                    .bind(payout_date)
                    .bind(zip)
                    .execute(p)
                    .await?;
            }
        }
        Ok(())
    }

    /// Every notice number the outbox holds, sent or not.
    pub async fn outbox_notice_nos(&self) -> Result<std::collections::HashSet<String>, StoreError> {
        let sql = "SELECT notice_no FROM notice_outbox";
        let v: Vec<String> = match self {
            Store::Pg(p) => sqlx::query_scalar(sql).fetch_all(p).await?,
            Store::Lite(p) => sqlx::query_scalar(sql).fetch_all(p).await?,
        };
        Ok(v.into_iter().collect())
    }

    pub async fn outbox_pending(&self) -> Result<Vec<OutboxItem>, StoreError> {
        let sql = "SELECT notice_no, merchant_id, email, payout_date, zip, attempts FROM notice_outbox WHERE sent_at IS NULL ORDER BY notice_no";
        use sqlx::Row;
        Ok(match self {
            Store::Pg(p) => sqlx::query(sql)
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| OutboxItem {
                    notice_no: r.get(0),
                    merchant_id: r.get(1),
                    email: r.get(2),
                    payout_date: r.get(3),
                    zip: r.get(4),
                    attempts: i64::from(r.get::<i32, _>(5)),
                })
                .collect(),
            Store::Lite(p) => sqlx::query(sql)
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| OutboxItem {
                    notice_no: r.get(0),
                    merchant_id: r.get(1),
                    email: r.get(2),
                    payout_date: r.get(3),
                    zip: r.get(4),
                    attempts: r.get(5),
                })
                .collect(),
        })
    }

    /// Marks a notice sent (only if it was not already: never twice).
    pub async fn outbox_mark(&self, notice_no: &str, result: Result<&str, &str>) -> Result<bool, StoreError> {
        let (sql, v) = match result {
            Ok(sent_at) => (
                "UPDATE notice_outbox SET sent_at = $2, attempts = attempts + 1, last_error = NULL WHERE notice_no = $1 AND sent_at IS NULL",
                sent_at,
            ),
            Err(e) => (
                "UPDATE notice_outbox SET attempts = attempts + 1, last_error = $2 WHERE notice_no = $1 AND sent_at IS NULL",
                e,
            ),
        };
        let n = match self {
            Store::Pg(p) => sqlx::query(sql).bind(notice_no).bind(v).execute(p).await?.rows_affected(),
            Store::Lite(p) => sqlx::query(&lite_params(sql)).bind(notice_no).bind(v).execute(p).await?.rows_affected(),
        };
        Ok(n == 1)
    }

    /// Runs raw SQL (tests and tamper drills only go through psql/sqlite3; this is
    /// for the benchmark's comparison table).
    pub async fn execute_raw(&self, sql: &str) -> Result<(), StoreError> {
        match self {
            Store::Pg(p) => {
                sqlx::raw_sql(sql).execute(p).await?;
            }
            Store::Lite(p) => {
                sqlx::raw_sql(sql).execute(p).await?;
            }
        }
        Ok(())
    }
}

/// `$1` placeholders as SQLite's numbered `?1`.
pub fn lite_params(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

impl Store {
    /// The last sealed position and hash, as the writers recorded them.
    /// A stored checkpoint, with the chain hash of the row at its position as
    /// it was when the checkpoint was taken and as it is now.
    pub async fn checkpoint_load(&self, name: &str) -> Result<Option<Checkpoint>, StoreError> {
        let sql = "SELECT c.position, c.chain_hash, e.chain_hash, c.data FROM checkpoints c LEFT JOIN events e ON e.global_position = c.position WHERE c.name = $1";
        let row: Option<(i64, Option<String>, Option<String>, String)> = match self {
            Store::Pg(p) => sqlx::query_as(sql).bind(name).fetch_optional(p).await?,
            Store::Lite(p) => sqlx::query_as(&lite_params(sql)).bind(name).fetch_optional(p).await?,
        };
        Ok(row.map(|(position, stored_hash, current_hash, data)| Checkpoint {
            position,
            stored_hash,
            current_hash,
            data,
        }))
    }

    /// Keeps a checkpoint taken after `position`, unless a later one is
    /// stored, and with it the parts it wrote (`name/part`, their SHA-256 and
    /// text), in one transaction: the parts of an older checkpoint that lost
    /// the race are not written.
    pub async fn checkpoint_save(&self, name: &str, position: i64, data: &str, parts: &[(String, &str, &str)]) -> Result<(), StoreError> {
        let main = "INSERT INTO checkpoints (name, position, chain_hash, data) SELECT $1, $2, (SELECT chain_hash FROM events WHERE global_position = $2), $3 \
                   ON CONFLICT (name) DO UPDATE SET position = excluded.position, chain_hash = excluded.chain_hash, data = excluded.data, written_at = CURRENT_TIMESTAMP \
                   WHERE checkpoints.position < excluded.position";
        let part = "INSERT INTO checkpoint_parts (name, position, sha256, data) VALUES ($1, $2, $3, $4) \
                    ON CONFLICT (name) DO UPDATE SET position = excluded.position, sha256 = excluded.sha256, data = excluded.data";
        match self {
            Store::Pg(p) => {
                let mut tx = p.begin().await?;
                let kept = sqlx::query(main).bind(name).bind(position).bind(data).execute(&mut *tx).await?.rows_affected() == 1;
                for (row, sha256, text) in parts.iter().filter(|_| kept) {
                    sqlx::query(part).bind(row).bind(position).bind(sha256).bind(text).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            Store::Lite(p) => {
                // SQLite's upsert after a SELECT needs a WHERE to parse.
                let main = lite_params(&main.replace("$3 ON CONFLICT", "$3 WHERE true ON CONFLICT"));
                let part = lite_params(part);
                let mut conn = p.acquire().await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
                let kept = sqlx::query(&main).bind(name).bind(position).bind(data).execute(&mut *tx).await?.rows_affected() == 1;
                for (row, sha256, text) in parts.iter().filter(|_| kept) {
                    sqlx::query(&part).bind(row).bind(position).bind(sha256).bind(text).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// A checkpoint part's SHA-256 and text, as stored.
    pub async fn checkpoint_part(&self, row: &str) -> Result<Option<(String, String)>, StoreError> {
        let sql = "SELECT sha256, data FROM checkpoint_parts WHERE name = $1";
        Ok(match self {
            Store::Pg(p) => sqlx::query_as(sql).bind(row).fetch_optional(p).await?,
            Store::Lite(p) => sqlx::query_as(&lite_params(sql)).bind(row).fetch_optional(p).await?,
        })
    }

    /// The SHA-256 of each stored part of a checkpoint (`name/part`), without their text.
    pub async fn checkpoint_part_hashes(&self, name: &str) -> Result<HashMap<String, String>, StoreError> {
        let sql = "SELECT name, sha256 FROM checkpoint_parts WHERE name LIKE $1";
        let pattern = format!("{name}/%");
        let rows: Vec<(String, String)> = match self {
            Store::Pg(p) => sqlx::query_as(sql).bind(&pattern).fetch_all(p).await?,
            Store::Lite(p) => sqlx::query_as(&lite_params(sql)).bind(&pattern).fetch_all(p).await?,
        };
        Ok(rows.into_iter().collect())
    }

    /// Whether a row of one of these aggregate types was recorded after
    /// `after`: a walk of the rows after it, in position order.
    pub async fn has_rows_after(&self, after: i64, types: &[&str]) -> Result<bool, StoreError> {
        Ok(match self {
            Store::Pg(p) => sqlx::query_scalar::<_, i64>(
                "SELECT global_position FROM events WHERE global_position > $1 AND aggregate_type = ANY($2) ORDER BY global_position LIMIT 1",
            )
            .bind(after)
            .bind(types)
            .fetch_optional(p)
            .await?
            .is_some(),
            Store::Lite(p) => sqlx::query_scalar::<_, i64>(
                // `+aggregate_type` keeps the walk on positions (the stream
                // index would visit every row of those types).
                "SELECT global_position FROM events WHERE global_position > ?1 AND +aggregate_type IN (SELECT value FROM json_each(?2)) ORDER BY global_position LIMIT 1",
            )
            .bind(after)
            .bind(serde_json::to_string(types).expect("strings serialise"))
            .fetch_optional(p)
            .await?
            .is_some(),
        })
    }

    pub async fn log_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        let sql = "SELECT position, hash FROM log_head WHERE id = 1";
        Ok(match self {
            Store::Pg(p) => sqlx::query_as(sql).fetch_optional(p).await?,
            Store::Lite(p) => sqlx::query_as(sql).fetch_optional(p).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys() {
        let v: serde_json::Value = serde_json::from_str(r#"{"b":1,"a":{"d":2,"c":"x"}}"#).unwrap();
        assert_eq!(canonical_json(&v), r#"{"a":{"c":"x","d":2},"b":1}"#);
    }

    #[test]
    fn lite_params_numbers_placeholders() {
        assert_eq!(lite_params("a = $1 AND b = $12"), "a = ?1 AND b = ?12");
    }

    /// A new store of each kind: a file in `dir`, and a new PostgreSQL
    /// database on 127.0.0.1:5432 (returned to be dropped after).
    async fn both_stores(dir: &std::path::Path) -> Vec<(Store, Option<String>)> {
        let lite = Store::open(&format!("sqlite://{}", dir.join("upay.db").display())).await.expect("sqlite store");
        let name = format!("upay_unit_{}_{}", std::process::id(), chrono::Utc::now().timestamp_subsec_nanos());
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect("postgres://postgres@127.0.0.1:5432/postgres").await.expect("PostgreSQL at 127.0.0.1:5432");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create database");
        let pg = Store::open(&format!("postgres://postgres@127.0.0.1:5432/{name}")).await.expect("postgres store");
        vec![(lite, None), (pg, Some(name))]
    }

    /// The reads in recording order filter alike on both stores (PostgreSQL
    /// writes its filter into a COPY and parses COPY's text format): every
    /// aggregate type for `None` and for an empty list, the ones named
    /// otherwise, nothing recorded after `until`; payload text with COPY's
    /// escaped characters comes back as written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_filter_and_return_text_alike_on_both_stores() {
        let dir = tempfile::tempdir().expect("temp dir");
        // Tab, line feed and carriage return between the tokens, a backslash and a
        // `\t` escape inside a string: each one COPY escapes on the way out.
        let payload = "{\"a\":\t\"x \\\\ y \\t\",\n\r\"b\":1}";
        for (st, db) in both_stores(dir.path()).await {
            let events = [
                NewEvent { aggregate_type: "Merchant", aggregate_id: "100000001".into(), sequence: 1, event_type: "MerchantRegistered", event_version: EVENT_VERSION, payload: "{}".into() },
                NewEvent { aggregate_type: "Payment", aggregate_id: "t-1".into(), sequence: 1, event_type: "Captured", event_version: EVENT_VERSION, payload: payload.into() },
            ];
            st.append(&events, &[], &StreamGuard::default()).await.expect("append");
            let read_all = |read: Read<'static>| {
                let st = &st;
                async move {
                    let mut rows: Vec<(String, String)> = Vec::new();
                    st.for_each_event(&read, |e: &mut RecordedEvent| -> Result<(), StoreError> {
                        rows.push((e.aggregate_type.to_string(), e.payload.clone()));
                        Ok(())
                    })
                    .await
                    .expect("read");
                    rows
                }
            };
            let kind = st.kind();
            let all = read_all(Read { full: true, ..Read::default() }).await;
            assert_eq!(all, vec![("Merchant".to_string(), "{}".to_string()), ("Payment".to_string(), payload.to_string())], "{kind}");
            assert_eq!(read_all(Read { types: Some(&[]), ..Read::default() }).await, all, "{kind}: an empty list filters nothing");
            assert_eq!(read_all(Read { types: Some(&["Payment"]), ..Read::default() }).await, all[1..].to_vec(), "{kind}");
            let before = chrono::Utc::now() - chrono::Duration::hours(1);
            assert_eq!(read_all(Read { until: Some(before), ..Read::default() }).await, Vec::new(), "{kind}: recorded after until");
            st.close().await;
            if let Some(name) = db {
                let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect("postgres://postgres@127.0.0.1:5432/postgres").await.expect("admin");
                sqlx::query(&format!("DROP DATABASE {name}")).execute(&mut admin).await.expect("drop database");
            }
        }
    }
}
