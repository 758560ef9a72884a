//! Test and benchmark support shared by every crate's tests and benches: the lab's
//! addresses and MACs ([`lab`]), and whole Ethernet frames built with etherparse
//! ([`frame`]), so a test states the packet it sends and the packet it expects in the
//! same words; frames written in place by the million ([`traffic`]); the full-pipeline
//! scenario ([`scenario`]) that the benches, the profiling binaries and `tollgate bench`
//! measure; a gateway of one or more workers on any port backend ([`gateway`]); and
//! throwaway network namespaces with veth pairs for tests against the kernel ([`netns`]);
//! a real PostgreSQL started by the test itself ([`postgres`]).

pub mod frame;
pub mod gateway;
pub mod lab;
pub mod netns;
pub mod postgres;
pub mod scenario;
pub mod traffic;
