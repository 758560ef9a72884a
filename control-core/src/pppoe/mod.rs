//! PPPoE.
