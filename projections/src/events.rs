//! What the nightly batch records. Published contract: names and fields are
//! never edited once shipped.

use chrono::NaiveDate;
use domain::{MerchantId, PayeeBank};
use payout::rules::StatementFigures;
use serde::{Deserialize, Serialize};

use crate::shard::Shard;

/// A statement closed by the batch: from then on its figures are facts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementClosed {
    pub merchant_id: MerchantId,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub payout_date: NaiveDate,
    pub notice_date: NaiveDate,
    pub figures: StatementFigures,
    /// The payee bank of the contract in force when the cycle closed: the
    /// transfer fee was decided by it, and the payout goes to it.
    pub payee: PayeeBank,
}

/// A batch run finished closing every cycle that ended on or before `through`
/// (for the merchants of `shard`, or all of them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCompleted {
    pub through: NaiveDate,
    pub shard: Option<Shard>,
    pub statements_closed: u64,
}

// A statement is the common case; boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SettlementEvent {
    StatementClosed(StatementClosed),
    RunCompleted(RunCompleted),
}

impl SettlementEvent {
    pub fn name(&self) -> &'static str {
        match self {
            SettlementEvent::StatementClosed(_) => "StatementClosed",
            SettlementEvent::RunCompleted(_) => "SettlementRunCompleted",
        }
    }
}
