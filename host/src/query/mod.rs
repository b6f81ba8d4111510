//! Queries and statistics over recorded passages (DOMAIN.md §2.7 "Query and statistics",
//! "Efficiency"; §3 recognition rate and manual-intervention ratio).
//!
//! This module owns the typed query criteria ([`PassageQuery`]) and how they are answered
//! from the store's passage indexes (the most selective index first, the other criteria as a
//! filter), the statistic reports ([`transit_stats`], [`efficiency`], [`outcomes`]) and their
//! definitions, and the conversion of times at the edge (dates, RFC 3339, UTC offsets; unix
//! ms inside). It reads the store through a [`Reader`](crate::store::Reader) (a snapshot) and
//! never writes it: no transaction, no outbox, no audit entry. It knows nothing of the bus or
//! the CLI, which both call these functions and print or publish the results; the exact
//! statistic formulas are in `docs/queries.md`.

mod criteria;
mod passages;
mod stats;
mod time;

pub use criteria::{OUTCOMES, PassageQuery, outcome_name, parse_outcome, parse_state, state_name};
pub use passages::{Access, Found, PassageSummary, Plan, find_passages};
pub use stats::{
    EfficiencyReport, ManualRatio, OutcomeReport, OutcomeRow, RECOGNISED_KINDS, RecognitionRow,
    TransitGrouping, TransitReport, TransitRow, efficiency, outcomes, transit_stats,
};
pub use time::{TimeRange, TimeSpec, UtcOffset, day_of, format_ms};

use crate::store::StoreError;

/// Why a query or a statistic could not be answered, or its criteria not understood.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An outcome name that is not one of the four.
    #[error("unknown outcome {given:?}; expected one of: release, manual, inspect, refuse")]
    UnknownOutcome {
        /// What was given.
        given: String,
    },
    /// A passage state name that is not one of the seven.
    #[error(
        "unknown passage state {given:?}; expected one of: pending, decided, manual, \
         inspection, inspected, closed, cancelled"
    )]
    UnknownState {
        /// What was given.
        given: String,
    },
    /// A time that is not a date, an RFC 3339 time or unix milliseconds.
    #[error(
        "{given:?} is not a time ({reason}); expected a date (2026-11-27), an RFC 3339 time \
         (2026-11-27T08:30:00+08:00; without an offset it is in the UTC offset given) or unix \
         milliseconds (1795737600000)"
    )]
    BadTime {
        /// What was given.
        given: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A UTC offset that cannot be read.
    #[error(
        "{given:?} is not a UTC offset; expected Z, UTC, or ±HH:MM between -18:00 and +18:00 \
         (e.g. +08:00)"
    )]
    BadOffset {
        /// What was given.
        given: String,
    },
    /// A time range whose start is not before its end.
    #[error(
        "empty time range: from {from_ms} is not before to {to_ms} (unix ms; `to` is exclusive)"
    )]
    EmptyRange {
        /// Start, unix ms (inclusive).
        from_ms: i64,
        /// End, unix ms (exclusive).
        to_ms: i64,
    },
}

#[cfg(test)]
mod tests;
