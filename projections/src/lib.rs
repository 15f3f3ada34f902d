//! Folds of the event stream into read models: the ledger that turns
//! transaction events into statements (used by the nightly batch and, as a fresh
//! fold, by the audit replay), and the settlement events the batch records.

pub mod events;
pub mod ledger;
pub mod shard;

pub use events::{RunCompleted, SettlementEvent, StatementClosed};
pub use ledger::{ExplainItem, Ledger, LineKind, Statement};
pub use shard::Shard;
