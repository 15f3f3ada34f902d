//! Payout rules: the Japanese bank calendar, settlement cycles with their payout
//! and notice dates, and the bank transfer (Zengin) file. Pure functions: no I/O,
//! no clock.

pub mod calendar;
pub mod cycle;
pub mod kana;
pub mod rules;
pub mod zengin;
