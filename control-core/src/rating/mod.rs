//! Rating rules (SPEC RATE-1..5, TUN-5): usage records in, charges and invoices out,
//! sans-I/O. The fast path only counts; the control plane rates.
//!
//! [`tariff`] compiles the `[rating]` config into a [`Plan`] (tariffs, [`band`]s,
//! contracts, billing accounts); [`rate`] turns a plan and [`usage`] records into
//! [`invoice`]s, cutting time at band edges and integrating the declared bandwidth
//! exactly ([`bandwidth`], seed 004 formulas 1-3 and the sampling variant); [`money`]
//! holds the one rounding rule; [`calendar`] the periods and dates. Time is Unix seconds,
//! passed in. The SQLite ledger and the `Rater` that ties plan and ledger together are
//! the shell's (`tollgate_control::rating`); `docs/rating.md` explains the model.

pub mod band;
pub mod bandwidth;
pub mod calendar;
pub mod invoice;
pub mod money;
pub mod rate;
pub mod tariff;
pub mod usage;

pub use self::calendar::Period;
pub use self::invoice::{Charge, Invoice};
pub use self::rate::Overflow;
pub use self::tariff::{Plan, RatingConfig};
pub use self::usage::{BandwidthChange, Record, ServiceUsage, SessionUsage, TunnelUsage};
