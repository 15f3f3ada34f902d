//! The hot statements on SQLite, run through SQLite's C API on the connection
//! sqlx holds, inside sqlx's transaction (docs/adr/0004): the rows of an
//! append, and the probes by id of the ingest.
//!
//! sqlx runs each SQLite connection on a worker thread of its own and hands it
//! every statement, every bound value and every row read through channels; a
//! multi-row INSERT of a day's file spent more time binding, copying and
//! clearing its 27,000 parameters, and waking threads, than SQLite spent in
//! its b-trees. Here a statement is prepared once and stepped once per row,
//! its values borrowed, not copied. The connection is locked for as long as a
//! statement exists (`LockedSqliteHandle`): sqlx's worker makes no call on it
//! meanwhile.

use std::ffi::{c_int, CStr};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use libsqlite3_sys as ffi;
use sqlx::sqlite::LockedSqliteHandle;

use super::StoreError;

/// A value bound to one parameter of a statement.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    Text(&'a str),
    Int(i64),
}

/// One prepared statement on a locked connection, finalized when dropped.
pub struct Statement<'h> {
    db: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
    params: usize,
    /// The statement lives no longer than the lock on its connection.
    _lock: PhantomData<&'h mut ()>,
}

/// The current row of a query, lent to the caller's closure.
pub struct Row<'s> {
    stmt: NonNull<ffi::sqlite3_stmt>,
    _statement: PhantomData<&'s ()>,
}

impl<'h> Statement<'h> {
    /// Prepares `sql` (one statement whose parameters are `?1`..`?N`).
    pub fn prepare(handle: &'h mut LockedSqliteHandle<'_>, sql: &str) -> Result<Statement<'h>, StoreError> {
        let db = handle.as_raw_handle();
        let len = c_int::try_from(sql.len()).map_err(|_| StoreError::Sqlite("statement too long".into()))?;
        let mut stmt: *mut ffi::sqlite3_stmt = ptr::null_mut();
        // SAFETY: `db` is an open connection that no other thread uses while
        // the lock is held; `sql` is valid for `len` bytes (no NUL needed when
        // the length is given); `stmt` receives a statement or null.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db.as_ptr(),
                sql.as_ptr().cast(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(last_error(db));
        }
        let stmt = NonNull::new(stmt).ok_or_else(|| StoreError::Sqlite(format!("no statement in {sql}")))?;
        // SAFETY: `stmt` was just prepared and is not finalized.
        let params = unsafe { ffi::sqlite3_bind_parameter_count(stmt.as_ptr()) };
        Ok(Statement {
            db,
            stmt,
            params: usize::try_from(params).unwrap_or(0),
            _lock: PhantomData,
        })
    }

    /// Runs the statement once with `values` bound to `?1`..`?N`: a write,
    /// whose rows (none) are not read.
    pub fn execute(&mut self, values: &[Value<'_>]) -> Result<(), StoreError> {
        self.query(values, |_| Ok(()))
    }

    /// Runs the statement once with `values` bound to `?1`..`?N` and hands
    /// each row it returns to `each`.
    pub fn query(&mut self, values: &[Value<'_>], mut each: impl FnMut(&Row<'_>) -> Result<(), StoreError>) -> Result<(), StoreError> {
        assert_eq!(values.len(), self.params, "a statement is run with every parameter bound");
        let stmt = self.stmt.as_ptr();
        for (i, v) in values.iter().enumerate() {
            let index = c_int::try_from(i + 1).expect("few parameters");
            // SAFETY: `stmt` is prepared and not finalized, `index` is one of
            // its parameters. Text is bound SQLITE_STATIC, without a copy: it
            // must stay valid until the statement is reset, which happens
            // below while `values` is still borrowed.
            let rc = unsafe {
                match *v {
                    Value::Text(t) => {
                        let len = c_int::try_from(t.len()).map_err(|_| StoreError::Sqlite("value too long".into()))?;
                        ffi::sqlite3_bind_text(stmt, index, t.as_ptr().cast(), len, ffi::SQLITE_STATIC())
                    }
                    Value::Int(n) => ffi::sqlite3_bind_int64(stmt, index, n),
                }
            };
            if rc != ffi::SQLITE_OK {
                return Err(last_error(self.db));
            }
        }
        let stepped = loop {
            // SAFETY: as above; every parameter is bound.
            match unsafe { ffi::sqlite3_step(stmt) } {
                ffi::SQLITE_ROW => {
                    let row = Row {
                        stmt: self.stmt,
                        _statement: PhantomData,
                    };
                    if let Err(e) = each(&row) {
                        break Err(e);
                    }
                }
                ffi::SQLITE_DONE => break Ok(()),
                _ => break Err(last_error(self.db)),
            }
        };
        // SAFETY: resetting a prepared statement is always allowed. It ends
        // the statement (and its use of the borrowed text) before this
        // function returns; the stale pointers left in the bindings are never
        // read: every run binds all of them again before a step, and finalize
        // does not read them.
        let reset = unsafe { ffi::sqlite3_reset(stmt) };
        stepped?;
        if reset != ffi::SQLITE_OK {
            return Err(last_error(self.db));
        }
        Ok(())
    }
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement was prepared on this connection, which is
        // still locked, and is finalized once.
        unsafe {
            ffi::sqlite3_finalize(self.stmt.as_ptr());
        }
    }
}

impl Row<'_> {
    /// Column `i` as text; NULL or text that is not UTF-8 is an error.
    pub fn text(&self, i: usize) -> Result<&str, StoreError> {
        self.opt_text(i)?.ok_or_else(|| StoreError::Corrupt(format!("column {i} is NULL")))
    }

    /// Column `i` as text, None for NULL; text that is not UTF-8 is an error.
    pub fn opt_text(&self, i: usize) -> Result<Option<&str>, StoreError> {
        let i = c_int::try_from(i).expect("few columns");
        // SAFETY: the statement has a current row (we are inside `query`'s
        // step loop); the text SQLite returns stays valid until the next
        // step or reset, which cannot happen while this row is borrowed.
        let bytes = unsafe {
            if ffi::sqlite3_column_type(self.stmt.as_ptr(), i) == ffi::SQLITE_NULL {
                return Ok(None);
            }
            let p = ffi::sqlite3_column_text(self.stmt.as_ptr(), i);
            let n = usize::try_from(ffi::sqlite3_column_bytes(self.stmt.as_ptr(), i)).unwrap_or(0);
            if p.is_null() {
                &[][..]
            } else {
                std::slice::from_raw_parts(p, n)
            }
        };
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("column {i} is not UTF-8 text: {e}")))
    }

    /// Column `i` as an integer.
    pub fn int(&self, i: usize) -> i64 {
        // SAFETY: as `opt_text`.
        unsafe { ffi::sqlite3_column_int64(self.stmt.as_ptr(), c_int::try_from(i).expect("few columns")) }
    }
}

/// The connection's last error; a broken uniqueness (the same stream
/// sequence or input written by another writer first) is a conflict.
fn last_error(db: NonNull<ffi::sqlite3>) -> StoreError {
    // SAFETY: `db` is open and locked; the message is copied before any other
    // call on the connection can change it.
    let (code, message) = unsafe {
        let code = ffi::sqlite3_extended_errcode(db.as_ptr());
        let msg = ffi::sqlite3_errmsg(db.as_ptr());
        let message = if msg.is_null() {
            String::new()
        } else {
            CStr::from_ptr(msg).to_string_lossy().into_owned()
        };
        (code, message)
    };
    match code {
        ffi::SQLITE_CONSTRAINT_PRIMARYKEY | ffi::SQLITE_CONSTRAINT_UNIQUE => StoreError::Conflict(message),
        _ => StoreError::Sqlite(format!("{message} (code {code})")),
    }
}

/// Runs `f`, which blocks on SQLite for the length of its statements, without
/// stalling the other tasks of a multi-threaded runtime.
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
