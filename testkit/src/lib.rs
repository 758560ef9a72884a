//! Test support shared by every crate's tests and benches: the lab's addresses and
//! MACs ([`lab`]), and whole Ethernet frames built with etherparse ([`frame`]), so a test
//! states the packet it sends and the packet it expects in the same words.

pub mod frame;
pub mod lab;
