//! The IP layers under the IPoE engines, as wire views and builders in the style of
//! [`crate::wire`]: the Internet checksum, IPv4 and UDP (the datagrams DHCPv4 rides in),
//! and IPv6 with its extension-header chain (the parser the fast path will use; see
//! [`ipv6`]'s doc for where it moves).

pub mod checksum;
pub mod ipv4;
pub mod ipv6;
pub mod udp;
