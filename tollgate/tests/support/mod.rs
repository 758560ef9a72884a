//! Helpers shared by the integration tests.

pub mod freeradius;
pub mod gateway;
