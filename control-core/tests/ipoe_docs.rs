//! docs/ipoe.md stays true: every drop, refusal and end-cause name the IPoE engines count
//! is in it (the operator looks them up there).

use tollgate_control_core::inet::ipv6::ChainError;
use tollgate_control_core::{dhcp, dhcpv6, nd};

const DOC: &str = include_str!("../../docs/ipoe.md");

#[test]
fn every_counter_name_is_documented() {
    let mut names: Vec<&str> = Vec::new();
    names.extend(dhcp::DropReason::ALL.iter().map(|d| d.name()));
    names.extend(dhcp::Refusal::ALL.iter().map(|r| r.name()));
    names.extend(dhcpv6::DropReason::ALL.iter().map(|d| d.name()));
    names.extend(dhcpv6::Refusal::ALL.iter().map(|r| r.name()));
    names.extend(nd::DropReason::ALL.iter().map(|d| d.name()));
    names.extend(
        tollgate_control_core::gateway::dhcp::DhcpDrop::ALL
            .iter()
            .map(|d| d.name()),
    );
    names.extend(
        [
            ChainError::Truncated,
            ChainError::TooLong,
            ChainError::HopByHopNotFirst,
            ChainError::Repeated,
            ChainError::BadOption,
        ]
        .iter()
        .map(|e| e.name()),
    );
    for c in [
        dhcp::EndCause::Release,
        dhcp::EndCause::Decline,
        dhcp::EndCause::Expired,
        dhcp::EndCause::Closed(String::new()),
        dhcp::EndCause::Nak,
        dhcp::EndCause::Replaced,
    ] {
        names.push(c.name());
    }
    let missing: Vec<&str> = names
        .into_iter()
        .filter(|n| !DOC.contains(&format!("`{n}`")))
        .collect();
    assert!(missing.is_empty(), "not in docs/ipoe.md: {missing:?}");
}
