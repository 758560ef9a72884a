//! PPPoE (RFC 2516) on the access side: the discovery engine of an access concentrator,
//! the subscriber line and its TR-101 identification, the AC-Cookie, the PADI rate
//! limits, and the wire views of the PPPoE header and tags.

pub mod cookie;
pub mod discovery;
pub mod limit;
pub mod line;
pub mod wire;

pub use discovery::{
    Discovery, DiscoveryConfig, DropReason, EndedBy, Event, Refusal, SessionInfo, Stats, Transmit,
};
pub use limit::Rate;
pub use line::{Line, LineId};
