//! The `upay` application: arguments, configuration, the stores, ingest, the
//! nightly batch, exports, notices, audit and the demo. The binaries `upay`
//! and `bench` are thin entry points over it.

pub mod app;
pub mod audit;
pub mod batch;
pub mod cli;
pub mod config;
pub mod csvin;
pub mod demo;
pub mod export;
pub mod fold;
pub mod ingest;
pub mod notice_cmd;
pub mod output;
pub mod schedule;
pub mod store;
