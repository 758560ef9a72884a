//! RADIUS for Tollgate: the wire format ([`packet`]), secrets ([`crypto`]), attribute
//! numbers and the vendor dictionary ([`dict`]), what Tollgate reads from and writes into
//! packets ([`attrs`]), the sans-I/O client with retransmission and failover
//! ([`client`]) and the RFC 5176 CoA/Disconnect listener ([`coa`]). Their UDP sockets
//! are the shell's (`tollgate_control::aaa::udp`). RFCs 2865, 2866, 2869, 3579, 5176.

pub mod attrs;
pub mod client;
pub mod coa;
pub mod crypto;
pub mod dict;
pub mod packet;

pub use client::{Client, ClientEvent, FailReason, Options, RequestId, ServerConfig};
pub use packet::{AttrKey, Attribute, Code, DecodeError, EncodeError, Packet};
