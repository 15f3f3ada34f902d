//! SQLite, the embedded store: the same table and the same rules as PostgreSQL;
//! SQLite admits one writer at a time, which orders positions by commit.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::sqlite_rows::{self, blocking, Statement, Value};
use super::{name, Head, NewEvent, NewInput, ReadSummary, RecordedEvent, StoreError, StreamGuard, CHAIN_GENESIS, FOLD_SKIPPED_EVENT_TYPES, REFUSAL};

const SCHEMA: &str = include_str!("../migrations/sqlite.sql");
/// The layout `SCHEMA` creates, kept in `PRAGMA user_version`.
const LAYOUT: i64 = 2;

/// Closes the pool, then opens and closes one connection alone, so that the
/// write-ahead log is folded back into the file and removed: the database
/// file is the whole store again. SQLite does that only on the close of the
/// last connection.
///
/// Two races are waited out. A connection handed back is put back in the
/// pool by a task of its own; sqlx's `close` waits for it to come back but
/// does not look at the idle queue again once it has, so a connection still
/// on its way back when `close` starts stays open (measured: about one
/// command in twenty left the log behind). So the pool is closed only once
/// every connection is idle. And a connection's own close runs on its worker
/// thread, perhaps after ours: the lone open and close is repeated, a few
/// milliseconds apart, while the log is still there. Best effort: a
/// connection that outlives the waits, or a store that cannot be reopened
/// here, leaves the log in place, and the next open replays it.
pub async fn close(pool: &SqlitePool) {
    for _ in 0..500 {
        if pool.num_idle() >= pool.size() as usize {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    pool.close().await;
    let options = pool.connect_options();
    let mut wal = options.get_filename().as_os_str().to_owned();
    wal.push("-wal");
    for _ in 0..50 {
        match <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options).await {
            Ok(conn) => {
                let _ = sqlx::Connection::close(conn).await;
            }
            Err(_) => return,
        }
        if !std::path::Path::new(&wal).exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub async fn open(url: &str, path: &str) -> Result<SqlitePool, StoreError> {
    let unreachable = |e: sqlx::Error| StoreError::Unreachable {
        url: url.to_string(),
        reason: e.to_string(),
    };
    if path.is_empty() {
        return Err(StoreError::BadUrl(format!("--store '{url}' names no file")));
    }
    let opts = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
        .map_err(unreachable)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(60))
        .foreign_keys(true)
        // A page cache of 32 MiB a connection instead of 2: a day's writes
        // touch index pages all over a large log.
        .pragma("cache_size", "-32768")
        // The log is copied back into the database every 32 MiB of WAL
        // instead of every 4: the index pages a day's chunks all touch are
        // written back once, not once per chunk.
        .pragma("wal_autocheckpoint", "8192");
    let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await.map_err(unreachable)?;
    let mut conn = pool.acquire().await?;
    let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
    let layout: i64 = sqlx::query_scalar("PRAGMA user_version").fetch_one(&mut *tx).await?;
    let has_events: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events')")
        .fetch_one(&mut *tx)
        .await?;
    if has_events && layout < LAYOUT {
        // Layout 1 kept the stream key as the table's key and the position in
        // an index beside it (with a trigger numbering sqlite-es's rows). The
        // rows are copied once, in position order, into the table of layout
        // 2; the old table goes with its indexes and trigger.
        tracing::warn!("{path}: converting the event table to layout {LAYOUT} (once)");
        sqlx::raw_sql("ALTER TABLE events RENAME TO events_layout1").execute(&mut *tx).await?;
        sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
        sqlx::raw_sql(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, global_position, recorded_at, chain_hash) \
             SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, global_position, recorded_at, chain_hash \
             FROM events_layout1 ORDER BY global_position; \
             DROP TABLE events_layout1;",
        )
        .execute(&mut *tx)
        .await?;
    }
    sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
    sqlx::raw_sql(&format!("PRAGMA user_version = {LAYOUT}")).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(pool)
}

/// The columns the hash chain covers, and the hash.
const SELECT_COLUMNS: &str = "global_position, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, chain_hash";

fn time_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn row_to_event(r: &sqlx::sqlite::SqliteRow) -> RecordedEvent {
    RecordedEvent {
        position: r.get(0),
        aggregate_type: name(r.get(1)),
        aggregate_id: r.get(2),
        sequence: r.get(3),
        event_type: name(r.get(4)),
        event_version: name(r.get(5)),
        payload: r.get(6),
        chain_hash: r.get(7),
    }
}

pub async fn for_each_event<E, F>(pool: &SqlitePool, read: &super::Read<'_>, mut f: F) -> Result<ReadSummary, E>
where
    F: FnMut(&mut RecordedEvent) -> Result<(), E>,
    E: From<StoreError>,
{
    let db = |e: sqlx::Error| E::from(StoreError::Db(e));
    let types_json = serde_json::to_string(&read.types.unwrap_or(&[])).expect("strings serialise");
    let skipped: &[&str] = if read.fold_only { &FOLD_SKIPPED_EVENT_TYPES } else { &[] };
    let skipped_json = serde_json::to_string(skipped).expect("strings serialise");
    let skipped_aggregate = if read.fold_only { REFUSAL } else { "" };
    let after = read.after;
    let until = read.until.map(time_text);
    // One read transaction: a consistent snapshot under WAL.
    let mut tx = pool.begin().await.map_err(db)?;
    let last: Option<i64> = sqlx::query_scalar("SELECT max(global_position) FROM events WHERE global_position > ?1 AND (?2 IS NULL OR recorded_at <= ?2)")
        .bind(after)
        .bind(&until)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
    let Some(last) = last else {
        tx.commit().await.map_err(db)?;
        return Ok(ReadSummary { rows: 0, last_position: after });
    };
    let filter = "global_position > ?1 AND global_position <= ?2 AND (?3 IS NULL OR recorded_at <= ?3) \
                  AND (json_array_length(?4) = 0 OR aggregate_type IN (SELECT value FROM json_each(?4))) \
                  AND event_type NOT IN (SELECT value FROM json_each(?5)) AND aggregate_type <> ?6";
    let sql = format!("SELECT {SELECT_COLUMNS} FROM events WHERE {filter} ORDER BY global_position");
    let mut n: u64 = 0;
    let mut last_read = after;
    {
        let mut rows = sqlx::query(&sql)
            .bind(after)
            .bind(last)
            .bind(&until)
            .bind(&types_json)
            .bind(&skipped_json)
            .bind(skipped_aggregate)
            .fetch(&mut *tx);
        while let Some(r) = rows.try_next().await.map_err(db)? {
            n += 1;
            let mut e = row_to_event(&r);
            last_read = e.position;
            f(&mut e)?;
        }
    }
    tx.commit().await.map_err(db)?;
    // A read that leaves nothing out must end on the snapshot's last row.
    if !read.fold_only && read.types.is_none() && last_read != last {
        return Err(E::from(StoreError::Corrupt(format!(
            "the read stopped at position {last_read}; the snapshot ends at {last}"
        ))));
    }
    Ok(ReadSummary { rows: n, last_position: last })
}

pub async fn load_streams(pool: &SqlitePool, aggregate_type: &str, ids: &[String]) -> Result<Vec<RecordedEvent>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT {SELECT_COLUMNS} FROM events WHERE aggregate_type = ?1 AND aggregate_id = ?2 ORDER BY sequence");
    let mut out = probe(pool, &sql, |stmt| {
        let mut out = Vec::new();
        for id in ids {
            stmt.query(&[Value::Text(aggregate_type), Value::Text(id)], |r| {
                out.push(raw_row_to_event(r)?);
                Ok(())
            })?;
        }
        Ok(out)
    })
    .await?;
    out.sort_by(|a, b| (&a.aggregate_id, a.sequence).cmp(&(&b.aggregate_id, b.sequence)));
    Ok(out)
}

pub async fn load_positions(pool: &SqlitePool, positions: &[i64]) -> Result<Vec<RecordedEvent>, StoreError> {
    if positions.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT {SELECT_COLUMNS} FROM events WHERE global_position = ?1");
    let mut out = probe(pool, &sql, |stmt| {
        let mut out = Vec::with_capacity(positions.len());
        for p in positions {
            stmt.query(&[Value::Int(*p)], |r| {
                out.push(raw_row_to_event(r)?);
                Ok(())
            })?;
        }
        Ok(out)
    })
    .await?;
    out.sort_by_key(|e| e.position);
    Ok(out)
}

pub async fn inputs_lookup(pool: &SqlitePool, ids: &[String]) -> Result<HashMap<String, String>, StoreError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    probe(pool, "SELECT digest FROM inputs WHERE event_id = ?1", |stmt| {
        let mut known = HashMap::new();
        for id in ids {
            stmt.query(&[Value::Text(id)], |r| {
                known.insert(id.clone(), r.text(0)?.to_string());
                Ok(())
            })?;
        }
        Ok(known)
    })
    .await
}

/// The ids of every stream of a type.
pub async fn stream_ids(pool: &SqlitePool, aggregate_type: &str) -> Result<Vec<String>, StoreError> {
    probe(pool, "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = ?1", |stmt| {
        let mut ids = Vec::new();
        stmt.query(&[Value::Text(aggregate_type)], |r| {
            ids.push(r.text(0)?.to_string());
            Ok(())
        })?;
        Ok(ids)
    })
    .await
}

/// Runs `f` on `sql` prepared through the C API (`sqlite_rows`), in one read
/// transaction: the probes of one call see one state of the store.
async fn probe<T>(pool: &SqlitePool, sql: &str, f: impl FnOnce(&mut Statement<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
    let mut tx = pool.begin().await?;
    let out = {
        let mut handle = tx.lock_handle().await?;
        blocking(|| f(&mut Statement::prepare(&mut handle, sql)?))?
    };
    tx.commit().await?;
    Ok(out)
}

/// A row read with `SELECT_COLUMNS` through the C API.
fn raw_row_to_event(r: &sqlite_rows::Row<'_>) -> Result<RecordedEvent, StoreError> {
    Ok(RecordedEvent {
        position: r.int(0),
        aggregate_type: name(r.text(1)?),
        aggregate_id: r.text(2)?.to_string(),
        sequence: r.int(3),
        event_type: name(r.text(4)?),
        event_version: name(r.text(5)?),
        payload: r.text(6)?.to_string(),
        chain_hash: r.opt_text(7)?.map(str::to_string),
    })
}

pub async fn append(pool: &SqlitePool, events: &[NewEvent], inputs: &[NewInput], guard: &StreamGuard) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
    if let Some(since) = guard.quiet_since {
        // `+aggregate_type`: a walk of the rows after `since` by position, not
        // of every transaction's row in the stream index.
        let newer: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE global_position > ?1 AND +aggregate_type IN ('Payment', 'Merchant'))")
            .bind(since)
            .fetch_one(&mut *tx)
            .await?;
        if newer {
            return Err(StoreError::Stale(since));
        }
    }
    if !guard.streams.is_empty() {
        // Every stream in one statement.
        let streams = serde_json::to_string(&guard.streams).expect("streams serialise");
        let moved: Option<(String, String)> = sqlx::query_as(
            "SELECT json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]') FROM json_each(?1) AS j \
             WHERE COALESCE((SELECT max(e.sequence) FROM events e WHERE e.aggregate_type = json_extract(j.value, '$[0]') \
                                                                    AND e.aggregate_id = json_extract(j.value, '$[1]')), 0) \
                   <> json_extract(j.value, '$[2]') LIMIT 1",
        )
        .bind(streams)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((ty, id)) = moved {
            return Err(StoreError::Conflict(format!("{ty}/{id}")));
        }
    }
    let (head_pos, head_hash): (i64, String) = sqlx::query_as("SELECT position, hash FROM log_head WHERE id = 1")
        .fetch_optional(&mut *tx)
        .await?
        .unwrap_or((0, CHAIN_GENESIS.to_string()));
    let unsealed = sqlx::query(&format!(
        "SELECT {SELECT_COLUMNS} FROM events WHERE chain_hash IS NULL ORDER BY global_position"
    ))
    .fetch_all(&mut *tx)
    .await?;
    let mut head = Head {
        position: head_pos,
        hash: head_hash,
    };
    for r in unsealed.iter().map(row_to_event) {
        let h = head.seal(&r)?;
        sqlx::query("UPDATE events SET chain_hash = ?1 WHERE global_position = ?2")
            .bind(&h)
            .bind(r.position)
            .execute(&mut *tx)
            .await?;
    }
    if !events.is_empty() {
        let first: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(global_position), 0) + 1 FROM events")
            .fetch_one(&mut *tx)
            .await?;
        let rows = head.chain(events, first);
        // One instant for the rows of one transaction, in the column's format
        // (the column's default would format the clock again for every row).
        let recorded_at = time_text(Utc::now());
        let mut handle = tx.lock_handle().await?;
        blocking(|| {
            let mut insert = Statement::prepare(
                &mut handle,
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, global_position, chain_hash, recorded_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, '{}', ?7, ?8, ?9)",
            )?;
            for (e, pos, h) in &rows {
                insert.execute(&[
                    Value::Text(e.aggregate_type),
                    Value::Text(&e.aggregate_id),
                    Value::Int(e.sequence),
                    Value::Text(e.event_type),
                    Value::Text(e.event_version),
                    Value::Text(&e.payload),
                    Value::Int(*pos),
                    Value::Text(h),
                    Value::Text(&recorded_at),
                ])?;
            }
            Ok::<_, StoreError>(())
        })?;
    }
    if !inputs.is_empty() {
        let mut handle = tx.lock_handle().await?;
        blocking(|| {
            let mut insert = Statement::prepare(&mut handle, "INSERT INTO inputs (event_id, digest, outcome, global_position) VALUES (?1, ?2, ?3, ?4)")?;
            for i in inputs {
                insert.execute(&[Value::Text(&i.event_id), Value::Text(&i.digest), Value::Text(&i.outcome), Value::Int(head.position)])?;
            }
            Ok::<_, StoreError>(())
        })?;
    }
    sqlx::query(
        "INSERT INTO log_head (id, position, hash) VALUES (1, ?1, ?2) ON CONFLICT (id) DO UPDATE SET position = excluded.position, hash = excluded.hash",
    )
    .bind(head.position)
    .bind(&head.hash)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
