//! What happened and what may happen: money, brands, merchant contracts and the
//! two aggregates (Merchant, Payment) with their commands, events and refusals.
//!
//! No I/O and no clock: every decision is a plain synchronous function
//! (`decide`/`apply`); the cqrs-es adapters only call them.

pub mod brand;
pub mod contract;
pub mod ids;
pub mod merchant;
pub mod money;
pub mod payment;
pub mod time;

pub use brand::{Brand, BrandGroup};
pub use contract::{AccountType, FeeTaxPolicy, MerchantContract, PayeeBank, Rates};
pub use ids::{CardToken, EventId, MerchantId, NoticePassword, ParseError, TxnId};
pub use money::{Rate, Yen};
