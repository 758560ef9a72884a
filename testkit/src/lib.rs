//! Test and benchmark support shared by every crate's tests and benches: the lab's
//! addresses and MACs ([`lab`]), and whole Ethernet frames built with etherparse
//! ([`frame`]), so a test states the packet it sends and the packet it expects in the
//! same words; frames written in place by the million ([`traffic`]); and the
//! full-pipeline scenario ([`scenario`]) that the benches, the profiling binaries and
//! `tollgate bench` measure.

pub mod frame;
pub mod lab;
pub mod scenario;
pub mod traffic;
