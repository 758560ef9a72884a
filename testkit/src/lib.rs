//! Test support shared by every crate's tests and benches: the lab's addresses and
//! MACs ([`lab`]), and whole Ethernet frames built with etherparse ([`frame`]), so a test
//! states the packet it sends and the packet it expects in the same words; and a gateway
//! of one or more workers on any port backend ([`gateway`]).

pub mod frame;
pub mod gateway;
pub mod lab;
