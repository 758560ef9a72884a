//! Which worker owns what, and how packets get to their owner.
//!
//! A subscriber's session belongs to worker `address % workers` (its IPv6 /64 is chosen
//! to belong to the same worker, [`prefix_worker`]); a NAT flow to the worker
//! whose slice of the NAT port range holds its port ([`crate::table::flow::NatConfig::worker_ports`]).
//! The control plane installs sessions on their owner with [`subscriber_worker`]. For
//! AF_PACKET, the kernel delivers each packet to its owner directly: a classic BPF fanout
//! program per port computes the same function ([`access_program`]: by source address;
//! [`core_program`]: by destination address, or by destination port for a NAT address),
//! so no packet crosses workers. Ports that cannot steer (RSS, vdevs) hand each packet to
//! its owner instead ([`crate::handoff`]), by [`frame_owner`], the same function in Rust.
//!
//! An LNS's PPP subscriber sends from behind its tunnel: its uplink arrives as an L2TP
//! data message to the gateway's tunnel address, whose outer source is the LAC. With
//! L2TP on, such a message (UDP 1701 to the side's address, T bit clear, PPP protocol
//! 0x0021 or 0x0057) is owned by the packet inside it, by its source, like a PPPoE
//! subscriber's frame ([`l2tp_owner`]; [`access_program_with`] and
//! [`core_program_with`] read the same fields): it reaches the worker of the
//! subscriber's session, whose downlink is steered there by destination already. L2TP
//! control messages and PPP control frames go by the outer header as before (the
//! control plane takes them from any worker).

#![deny(unsafe_code)]

use std::net::Ipv4Addr;

use crate::table::flow::NatConfig;
use crate::types::Side;
use crate::wire::flow;

/// The worker that owns the subscriber at `ip`.
#[inline]
pub fn subscriber_worker(ip: Ipv4Addr, workers: u16) -> u16 {
    (u32::from(ip) % workers.max(1) as u32) as u16
}

/// The worker that owns the IPv6 /64 `prefix` (its upper 64 bits): by the /56 that holds
/// it, address bits 24..55 (the 32-bit word 3 bytes into the address) modulo the workers.
/// Every /64 of a /56 is owned by one worker, so a delegated prefix of /56 or longer
/// (IA_PD) reaches its session's worker whichever of its /64s a packet is from. The
/// control plane chooses a session's /64 and delegated prefix so that they are owned by
/// the worker of its IPv4 address.
#[inline]
pub fn prefix_worker(prefix: u64, workers: u16) -> u16 {
    ((prefix >> 8) as u32 % workers.max(1) as u32) as u16
}

/// Where in the IPv6 address the steering word of [`prefix_worker`] starts (bytes).
const PREFIX_WORD: u32 = 3;

/// Where the IPv6 header of `frame` starts, untagged or behind up to two VLAN tags.
fn ipv6_header(frame: &[u8]) -> Option<usize> {
    let mut at = 12;
    for _ in 0..3 {
        let et = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
        match et {
            0x86dd => return Some(at + 2),
            0x8100 | 0x88a8 | flow::QINQ_LEGACY => at += 4,
            // A PPPoE session frame carrying IPv6 (PPP protocol 0x0057).
            0x8864 => {
                let proto = frame.get(at + 8..at + 10)?;
                return (proto == [0x00, 0x57]).then_some(at + 10);
            }
            _ => return None,
        }
    }
    None
}

/// The worker whose slice of `ports` holds `port`.
#[inline]
pub fn nat_port_worker(port: u16, (lo, hi): (u16, u16), workers: u16) -> u16 {
    let workers = workers.max(1) as u32;
    let slice = ((hi as u32 - lo as u32 + 1) / workers).max(1);
    ((port.wrapping_sub(lo) as u32 / slice) % workers) as u16
}

/// The worker that owns the state of `frame`, received on `side`: by source address on
/// the access side; on the core side by NAT port (or ICMP echo identifier) when addressed
/// to a NAT address, else by destination address. The same function as the fanout
/// programs, for ports that cannot steer (handoff, [`crate::handoff`]). The frame is read
/// by the flow-key parser the look-ahead uses ([`flow::parse`]), so frames in VLAN tags or
/// PPPoE are owned by the IPv4 packet inside, as in [`access_program`]: a PPPoE or tagged
/// subscriber's uplink and downlink meet on the worker of its address. `None` for frames
/// no worker owns (neither IPv4 nor IPv6, PPPoE discovery or PPP control, cut short, a
/// later fragment or a protocol without ports to a NAT address): any worker handles
/// those. IPv6 goes by the /56 of the subscriber's address ([`prefix_worker`]).
#[inline]
pub fn frame_owner(side: Side, frame: &[u8], workers: u16, nat: &NatConfig) -> Option<u16> {
    frame_owner_with(side, frame, workers, nat, &[], None)
}

/// [`frame_owner`], with `more` addresses steered by port like the NAT addresses (the
/// NAT64 pool, whose bindings take their ports from the same per-worker slices), and
/// with L2TP on, `tunnel`, the address of `side` that L2TP data messages come to: such
/// a message carrying IPv4 or IPv6 is owned by its inner source ([`l2tp_owner`]).
#[inline]
pub fn frame_owner_with(
    side: Side,
    frame: &[u8],
    workers: u16,
    nat: &NatConfig,
    more: &[Ipv4Addr],
    tunnel: Option<Ipv4Addr>,
) -> Option<u16> {
    if let Some(l3) = ipv6_header(frame) {
        // IPv6 by the /56 of the subscriber: its source uplink, its destination downlink.
        let at = l3 + if side == Side::Access { 8 } else { 24 };
        let hi = frame.get(at..at + 8)?;
        let prefix = u64::from_be_bytes(hi.try_into().ok()?);
        return Some(prefix_worker(prefix, workers));
    }
    let key = flow::parse(frame)?;
    let (src, dst) = key.ipv4()?;
    if let Some(tunnel) = tunnel.filter(|t| *t == dst)
        && key.pppoe_session.is_none()
        && let Some(owner) = l2tp_owner(frame.get(key.l3..)?, tunnel, workers)
    {
        return Some(owner);
    }
    if side == Side::Access {
        return Some(subscriber_worker(src, workers));
    }
    if !nat.addresses.contains(&dst) && !more.contains(&dst) {
        return Some(subscriber_worker(dst, workers));
    }
    let port = match key.ports {
        Some((_, port)) => port,
        None => quoted_port(frame)?,
    };
    Some(nat_port_worker(port, nat.ports, workers))
}

/// The owner of an L2TP data message to `tunnel` (the IPv4 packet `ip`, from its header)
/// by the packet it carries: IPv4 (PPP 0x0021) by its source's [`subscriber_worker`],
/// IPv6 (0x0057) by its source's /56 ([`prefix_worker`]). The L2TP header's optional
/// Length, Ns/Nr and Offset fields are skipped, then PPP's `ff 03` when present, and the
/// protocol is read compressed (one odd byte) or not. `None` for anything else: not UDP
/// 1701 to `tunnel`, a fragment, a control message (T bit), a version other than 2, PPP
/// control, or cut short. The fanout programs read the same fields
/// ([`access_program_with`], [`core_program_with`]).
#[inline]
pub fn l2tp_owner(ip: &[u8], tunnel: Ipv4Addr, workers: u16) -> Option<u16> {
    let be16 = |b: &[u8], at: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
    };
    if ip.get(16..20)? != tunnel.octets() || *ip.get(9)? != 17 || be16(ip, 6)? & 0x3fff != 0 {
        return None;
    }
    let udp = ip.get(usize::from(ip[0] & 0x0f) * 4..)?;
    if be16(udp, 2)? != L2TP_PORT {
        return None;
    }
    // The fast path's own views: the L2TP header (a data message of version 2), then
    // the PPP protocol, compressed or not, after an optional `ff 03`.
    let l2tp = udp.get(8..)?;
    let h = crate::wire::l2tp::Packet::new_unchecked(l2tp)
        .header()
        .ok()?;
    if h.control {
        return None;
    }
    let ppp = l2tp.get(h.payload_at..)?;
    let (proto, len) = crate::wire::l2tp::ppp_protocol(ppp).ok()?;
    let ipv6 = match proto {
        0x0021 => false,
        0x0057 => true,
        _ => return None,
    };
    let inner = ppp.get(len..)?;
    if ipv6 {
        let hi = inner.get(8..16)?;
        return Some(prefix_worker(
            u64::from_be_bytes(hi.try_into().ok()?),
            workers,
        ));
    }
    let src: [u8; 4] = inner.get(12..16)?.try_into().ok()?;
    Some(subscriber_worker(Ipv4Addr::from(src), workers))
}

/// UDP port and header bits of L2TPv2 (RFC 2661 3.1) that [`l2tp_owner`] and the programs
/// read (as in [`crate::wire::l2tp`]).
const L2TP_PORT: u16 = crate::wire::l2tp::PORT;
const L2TP_L: u16 = crate::wire::l2tp::flags::L;
const L2TP_S: u16 = crate::wire::l2tp::flags::S;
const L2TP_O: u16 = crate::wire::l2tp::flags::O;

/// The port of the flow or binding an ICMP error (destination unreachable, time
/// exceeded, parameter problem) to a NAT or pool address is about: the quoted packet's
/// source port, or its echo identifier, as [`core_program`] reads it.
fn quoted_port(frame: &[u8]) -> Option<u16> {
    let mut at = 12;
    for _ in 0..3 {
        match u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]) {
            0x0800 => break,
            0x8100 | 0x88a8 | flow::QINQ_LEGACY => at += 4,
            _ => return None,
        }
    }
    let ip = frame.get(at + 2..)?;
    if *ip.get(9)? != 1 {
        return None;
    }
    let icmp = ip.get(usize::from(ip[0] & 0x0f) * 4..)?;
    if !matches!(*icmp.first()?, 3 | 11 | 12) {
        return None;
    }
    let quoted = icmp.get(8..)?;
    let l4 = quoted.get(usize::from(*quoted.first()? & 0x0f) * 4..)?;
    let at = if *quoted.get(9)? == 1 { 4 } else { 0 };
    Some(u16::from_be_bytes([*l4.get(at)?, *l4.get(at + 1)?]))
}

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Constant.
    pub k: u32,
}

// Opcodes (linux/filter.h, linux/bpf_common.h).
const LD_H_ABS: u16 = 0x28;
const LD_W_ABS: u16 = 0x20;
const LD_B_ABS: u16 = 0x30;
const LD_H_IND: u16 = 0x48;
const LD_B_IND: u16 = 0x50;
const ALU_ADD_X: u16 = 0x0c;
const LD_W_IND: u16 = 0x40;
const LDX_IMM: u16 = 0x01;
const ALU_AND_K: u16 = 0x54;
const ALU_LSH_K: u16 = 0x64;
const ALU_SUB_K: u16 = 0x14;
const ALU_DIV_K: u16 = 0x34;
const ALU_MOD_K: u16 = 0x94;
const MISC_TAX: u16 = 0x07;
const JEQ_K: u16 = 0x15;
const JA: u16 = 0x05;
const RET_A: u16 = 0x16;
const RET_K: u16 = 0x06;
const ALU_ADD_K: u16 = 0x04;
const ALU_RSH_K: u16 = 0x74;
const MISC_TXA: u16 = 0x87;
/// `M[k] = A`, `M[k] = X`, `A = M[k]`, `X = M[k]` (scratch memory, 16 words).
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const LD_MEM: u16 = 0x60;
const LDX_MEM: u16 = 0x61;
/// Loads relative to the network header (`SKF_NET_OFF`).
const NET: u32 = (-0x100000i32) as u32;
/// `SKF_AD_OFF + SKF_AD_PROTOCOL`: the frame's EtherType.
const PROTOCOL: u32 = (-0x1000i32) as u32;

fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

/// One step of a program written with labels ([`assemble`]).
enum Op {
    /// Where a label points.
    Label(&'static str),
    /// An instruction without jumps.
    I(Insn),
    /// `jeq k`: to the first label if equal, else to the second (`""`: the next one).
    Jeq(u32, &'static str, &'static str),
    /// `ja` to a label.
    Ja(&'static str),
}

/// Resolves the labels of `ops` into jump offsets.
fn assemble(ops: &[Op]) -> Vec<Insn> {
    let mut at = std::collections::HashMap::new();
    let mut n = 0usize;
    for op in ops {
        match op {
            Op::Label(l) => {
                at.insert(*l, n);
            }
            _ => n += 1,
        }
    }
    let mut p = Vec::with_capacity(n);
    let rel = |here: usize, l: &str| -> u32 {
        if l.is_empty() {
            0
        } else {
            (at[l] - here - 1) as u32
        }
    };
    for op in ops {
        let here = p.len();
        match *op {
            Op::Label(_) => {}
            Op::I(i) => p.push(i),
            Op::Jeq(k, t, f) => p.push(jump(JEQ_K, k, rel(here, t) as u8, rel(here, f) as u8)),
            Op::Ja(l) => p.push(stmt(JA, rel(here, l))),
        }
    }
    p
}

/// The fanout program of an access port: IPv4 by source address, also inside up to two
/// VLAN tags and inside PPPoE sessions (PPP protocol 0x0021), so that a tagged or PPPoE
/// subscriber's uplink reaches the worker its downlink goes to; IPv6 (untagged, tagged,
/// or in PPPoE as PPP protocol 0x0057) by the /56 of its source ([`prefix_worker`]: the
/// word 3 bytes into the source address); anything else (ARP, PPPoE discovery, PPP control: punted by any
/// worker) to worker 0.
///
/// The kernel takes an 802.1Q or 802.1ad outer tag off into metadata before fanout:
/// the protocol is then the next EtherType and the network header follows the tag. A
/// second tag (QinQ), or a tag the kernel leaves (0x9100), stays in the data, at the
/// network header. X holds how many tag bytes are in the data before the IPv4 or PPPoE
/// header.
pub fn access_program(workers: u16) -> Vec<Insn> {
    access_program_with(workers, None)
}

/// [`access_program`], with L2TP on: an L2TP data message to `tunnel` (the access side's
/// address) carrying IPv4 or IPv6 goes by the packet inside, as [`l2tp_owner`] reads it.
pub fn access_program_with(workers: u16, tunnel: Option<Ipv4Addr>) -> Vec<Insn> {
    use Op::*;
    const IPV4: u32 = 0x0800;
    const PPPOE: u32 = 0x8864;
    const TAG: u32 = 0x8100;
    const IPV6: u32 = 0x86dd;
    let mut ops = vec![
        I(stmt(LDX_IMM, 0)),
        I(stmt(LD_H_ABS, PROTOCOL)),
        Jeq(IPV4, "ipv4", ""),
        Jeq(IPV6, "ipv6", ""),
        Jeq(PPPOE, "pppoe", ""),
        Jeq(TAG, "tag", ""),
        Jeq(0x88a8, "tag", ""),
        Jeq(flow::QINQ_LEGACY as u32, "tag", "other"),
        // One tag in the data: the EtherType after it.
        Label("tag"),
        I(stmt(LD_H_ABS, NET + 2)),
        Jeq(IPV4, "ipv4_4", ""),
        Jeq(IPV6, "ipv6_4", ""),
        Jeq(PPPOE, "pppoe_4", ""),
        Jeq(TAG, "", "other"),
        // Two.
        I(stmt(LD_H_ABS, NET + 6)),
        Jeq(IPV4, "ipv4_8", ""),
        Jeq(IPV6, "", "pppoe_8?"),
        I(stmt(LDX_IMM, 8)),
        Ja("ipv6"),
        Label("ipv4_8"),
        I(stmt(LDX_IMM, 8)),
        Ja("ipv4"),
        Label("pppoe_8?"),
        Jeq(PPPOE, "", "other"),
        I(stmt(LDX_IMM, 8)),
        Ja("pppoe"),
        Label("ipv6_4"),
        I(stmt(LDX_IMM, 4)),
        Ja("ipv6"),
        Label("ipv4_4"),
        I(stmt(LDX_IMM, 4)),
        Ja("ipv4"),
        Label("pppoe_4"),
        I(stmt(LDX_IMM, 4)),
        // PPPoE session data carrying IPv4: its source, 8 bytes further; carrying IPv6:
        // the /56 of its source.
        Label("pppoe"),
        I(stmt(LD_H_IND, NET + 6)),
        Jeq(0x0057, "pppoe6", ""),
        Jeq(0x0021, "", "other"),
        I(stmt(LD_W_IND, NET + 8 + 12)),
        Ja("owner"),
        Label("pppoe6"),
        I(stmt(LD_W_IND, NET + 8 + 8 + PREFIX_WORD)),
        Ja("owner"),
        // IPv6: by the /56 of its source (at 8).
        Label("ipv6"),
        I(stmt(LD_W_IND, NET + 8 + PREFIX_WORD)),
        Ja("owner"),
        Label("ipv4"),
    ];
    if let Some(tunnel) = tunnel {
        ops.extend(l2tp_ops(tunnel));
    }
    ops.extend([
        I(stmt(LD_W_IND, NET + 12)),
        Label("owner"),
        I(stmt(ALU_MOD_K, workers.max(1) as u32)),
        I(stmt(RET_A, 0)),
        Label("other"),
        I(stmt(RET_K, 0)),
    ]);
    assemble(&ops)
}

/// The steps that steer an L2TP data message to `tunnel` by its inner packet, for an
/// IPv4 header at X bytes past the network header: on a match they leave the steering
/// word in A and jump to `owner` (IPv4: the inner source; IPv6: the word 3 bytes into
/// its source, [`PREFIX_WORD`]); otherwise they fall through with X as it was (kept in
/// `M[0]`). The same reading as [`l2tp_owner`]; `M[1]` holds the L2TP flags, `M[2]` where
/// the PPP frame starts.
fn l2tp_ops(tunnel: Ipv4Addr) -> Vec<Op> {
    use Op::*;
    vec![
        I(stmt(STX, 0)),
        I(stmt(LD_W_IND, NET + 16)),
        Jeq(u32::from(tunnel), "", "l2tp_no"),
        I(stmt(LD_B_IND, NET + 9)),
        Jeq(17, "", "l2tp_no"),
        I(stmt(LD_H_IND, NET + 6)),
        I(stmt(ALU_AND_K, 0x3fff)),
        Jeq(0, "", "l2tp_no"),
        // X = the UDP header.
        I(stmt(LD_B_IND, NET)),
        I(stmt(ALU_AND_K, 0x0f)),
        I(stmt(ALU_LSH_K, 2)),
        I(stmt(ALU_ADD_X, 0)),
        I(stmt(MISC_TAX, 0)),
        I(stmt(LD_H_IND, NET + 2)),
        Jeq(u32::from(L2TP_PORT), "", "l2tp_no"),
        // Data (T clear), version 2.
        I(stmt(LD_H_IND, NET + 8)),
        I(stmt(ST, 1)),
        I(stmt(ALU_AND_K, 0x800f)),
        Jeq(2, "", "l2tp_no"),
        // M[2] = the PPP frame: past flags, tunnel and session, and what L, S, O add.
        I(stmt(MISC_TXA, 0)),
        I(stmt(ALU_ADD_K, 8 + 6)),
        I(stmt(ST, 2)),
        I(stmt(LD_MEM, 1)),
        I(stmt(ALU_AND_K, u32::from(L2TP_L))),
        Jeq(0, "l2tp_s", ""),
        I(stmt(LD_MEM, 2)),
        I(stmt(ALU_ADD_K, 2)),
        I(stmt(ST, 2)),
        Label("l2tp_s"),
        I(stmt(LD_MEM, 1)),
        I(stmt(ALU_AND_K, u32::from(L2TP_S))),
        Jeq(0, "l2tp_o", ""),
        I(stmt(LD_MEM, 2)),
        I(stmt(ALU_ADD_K, 4)),
        I(stmt(ST, 2)),
        Label("l2tp_o"),
        I(stmt(LD_MEM, 1)),
        I(stmt(ALU_AND_K, u32::from(L2TP_O))),
        Jeq(0, "l2tp_ppp", ""),
        // Offset Size, then that many bytes of padding.
        I(stmt(LDX_MEM, 2)),
        I(stmt(LD_H_IND, NET)),
        I(stmt(ALU_ADD_K, 2)),
        I(stmt(ALU_ADD_X, 0)),
        I(stmt(ST, 2)),
        // PPP: `ff 03` skipped, then the protocol, two bytes or one odd one.
        Label("l2tp_ppp"),
        I(stmt(LDX_MEM, 2)),
        I(stmt(LD_H_IND, NET)),
        Jeq(0xff03, "", "l2tp_proto"),
        I(stmt(MISC_TXA, 0)),
        I(stmt(ALU_ADD_K, 2)),
        I(stmt(MISC_TAX, 0)),
        I(stmt(LD_H_IND, NET)),
        Label("l2tp_proto"),
        Jeq(0x0021, "l2tp_v4_2", ""),
        Jeq(0x0057, "l2tp_v6_2", ""),
        I(stmt(ALU_RSH_K, 8)),
        Jeq(0x21, "l2tp_v4_1", ""),
        Jeq(0x57, "l2tp_v6_1", "l2tp_no"),
        Label("l2tp_v4_2"),
        I(stmt(MISC_TXA, 0)),
        I(stmt(ALU_ADD_K, 1)),
        I(stmt(MISC_TAX, 0)),
        Label("l2tp_v4_1"),
        I(stmt(MISC_TXA, 0)),
        I(stmt(ALU_ADD_K, 1)),
        I(stmt(MISC_TAX, 0)),
        I(stmt(LD_W_IND, NET + 12)),
        Ja("owner"),
        Label("l2tp_v6_2"),
        I(stmt(MISC_TXA, 0)),
        I(stmt(ALU_ADD_K, 1)),
        I(stmt(MISC_TAX, 0)),
        Label("l2tp_v6_1"),
        I(stmt(MISC_TXA, 0)),
        I(stmt(ALU_ADD_K, 1)),
        I(stmt(MISC_TAX, 0)),
        I(stmt(LD_W_IND, NET + 8 + PREFIX_WORD)),
        Ja("owner"),
        Label("l2tp_no"),
        I(stmt(LDX_MEM, 0)),
    ]
}

/// The fanout program of a core port: IPv4 to a NAT address by its TCP/UDP destination
/// port or ICMP identifier, other IPv4 by destination address, IPv6 by the /56 of its
/// destination ([`prefix_worker`]), anything else to worker 0.
pub fn core_program(workers: u16, nat: &[Ipv4Addr], ports: (u16, u16)) -> Vec<Insn> {
    core_program_with(workers, nat, ports, None)
}

/// [`core_program`], with L2TP on: an L2TP data message to `tunnel` (the core side's
/// address; a LAC may be on either side) carrying IPv4 or IPv6 goes by the packet
/// inside, as [`l2tp_owner`] reads it.
pub fn core_program_with(
    workers: u16,
    nat: &[Ipv4Addr],
    ports: (u16, u16),
    tunnel: Option<Ipv4Addr>,
) -> Vec<Insn> {
    // IPv6 first: the steering word of the destination (at 24), modulo the workers; the IPv4
    // program below is reached by a jump over these five (its jumps are relative).
    let mut p = vec![
        stmt(LD_H_ABS, PROTOCOL),
        jump(JEQ_K, 0x86dd, 0, 3),
        stmt(LD_W_ABS, NET + 24 + PREFIX_WORD),
        stmt(ALU_MOD_K, workers.max(1) as u32),
        stmt(RET_A, 0),
    ];
    p.extend(core_program_v4(workers, nat, ports, tunnel));
    p
}

fn core_program_v4(
    workers: u16,
    nat: &[Ipv4Addr],
    ports: (u16, u16),
    tunnel: Option<Ipv4Addr>,
) -> Vec<Insn> {
    use Op::*;
    let workers = workers.max(1) as u32;
    let slice = ((ports.1 as u32 - ports.0 as u32 + 1) / workers).max(1);
    let mut ops = vec![I(stmt(LD_H_ABS, PROTOCOL)), Jeq(0x0800, "", "ret0")];
    if let Some(tunnel) = tunnel {
        // The IPv4 header right at the network header.
        ops.push(I(stmt(LDX_IMM, 0)));
        ops.extend(l2tp_ops(tunnel));
    }
    ops.push(I(stmt(LD_W_ABS, NET + 16)));
    for a in nat {
        ops.push(Jeq(u32::from(*a), "nat", ""));
    }
    ops.extend([
        Label("owner"),
        I(stmt(ALU_MOD_K, workers)),
        I(stmt(RET_A, 0)),
        // NAT address: which protocol?
        Label("nat"),
        I(stmt(LD_B_ABS, NET + 9)),
        Jeq(6, "hl", ""),
        Jeq(17, "hl", ""),
        Jeq(1, "hl", "ret0"),
        // X = IPv4 header length.
        Label("hl"),
        I(stmt(LD_B_ABS, NET)),
        I(stmt(ALU_AND_K, 0x0f)),
        I(stmt(ALU_LSH_K, 2)),
        I(stmt(MISC_TAX, 0)),
        // A destination port 2 bytes in; for ICMP the echo identifier 4 bytes in, or
        // for an error the quoted packet's source port (or echo identifier): the port
        // of the flow or binding that sent it.
        I(stmt(LD_B_ABS, NET + 9)),
        Jeq(1, "icmp", ""),
        I(stmt(LD_H_IND, NET + 2)),
        Ja("port"),
        Label("icmp"),
        I(stmt(LD_B_IND, NET)),
        Jeq(3, "error", ""),
        Jeq(11, "error", ""),
        Jeq(12, "error", ""),
        I(stmt(LD_H_IND, NET + 4)),
        Ja("port"),
        // X += the quoted header's length (after its protocol is read).
        Label("error"),
        I(stmt(LD_B_IND, NET + 8 + 9)),
        Jeq(1, "", "quoted_ports"),
        I(stmt(LD_B_IND, NET + 8)),
        I(stmt(ALU_AND_K, 0x0f)),
        I(stmt(ALU_LSH_K, 2)),
        I(stmt(ALU_ADD_X, 0)),
        I(stmt(MISC_TAX, 0)),
        I(stmt(LD_H_IND, NET + 8 + 4)),
        Ja("port"),
        Label("quoted_ports"),
        I(stmt(LD_B_IND, NET + 8)),
        I(stmt(ALU_AND_K, 0x0f)),
        I(stmt(ALU_LSH_K, 2)),
        I(stmt(ALU_ADD_X, 0)),
        I(stmt(MISC_TAX, 0)),
        I(stmt(LD_H_IND, NET + 8)),
        Label("port"),
        I(stmt(ALU_SUB_K, ports.0 as u32)),
        I(stmt(ALU_DIV_K, slice)),
        I(stmt(RET_A, 0)),
        Label("ret0"),
        I(stmt(RET_K, 0)),
    ]);
    assemble(&ops)
}

/// Runs a program of this module over a packet (`ip`, from its network header: what
/// follows the EtherType, or the tag the kernel took off) with EtherType `ethertype`
/// (tests, and a check that a program and the owner functions agree).
pub fn run(prog: &[Insn], ethertype: u16, ip: &[u8]) -> Option<u32> {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    let load = |off: u32, size: usize| -> Option<u32> {
        let o = off.wrapping_sub(NET) as usize;
        let b = ip.get(o..o + size)?;
        Some(b.iter().fold(0u32, |acc, v| acc << 8 | *v as u32))
    };
    loop {
        let i = *prog.get(pc)?;
        pc += 1;
        match i.code {
            LD_H_ABS if i.k == PROTOCOL => a = ethertype as u32,
            LD_H_ABS => a = load(i.k, 2)?,
            LD_W_ABS => a = load(i.k, 4)?,
            LD_B_ABS => a = load(i.k, 1)?,
            LD_H_IND => a = load(i.k.wrapping_add(x), 2)?,
            LD_B_IND => a = load(i.k.wrapping_add(x), 1)?,
            ALU_ADD_X => a = a.wrapping_add(x),
            LD_W_IND => a = load(i.k.wrapping_add(x), 4)?,
            LDX_IMM => x = i.k,
            ALU_AND_K => a &= i.k,
            ALU_LSH_K => a <<= i.k,
            ALU_SUB_K => a = a.wrapping_sub(i.k),
            ALU_DIV_K => a /= i.k,
            ALU_MOD_K => a %= i.k,
            MISC_TAX => x = a,
            MISC_TXA => a = x,
            ALU_ADD_K => a = a.wrapping_add(i.k),
            ALU_RSH_K => a >>= i.k,
            ST => *mem.get_mut(i.k as usize)? = a,
            STX => *mem.get_mut(i.k as usize)? = x,
            LD_MEM => a = *mem.get(i.k as usize)?,
            LDX_MEM => x = *mem.get(i.k as usize)?,
            JEQ_K => pc += if a == i.k { i.jt } else { i.jf } as usize,
            JA => pc += i.k as usize,
            RET_A => return Some(a),
            RET_K => return Some(i.k),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Ipv4HeaderSlice, PacketBuilder};

    fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, port: u16) -> Vec<u8> {
        let b = PacketBuilder::ipv4(src, dst, 64);
        let mut v = Vec::new();
        match proto {
            6 => b.tcp(80, port, 1, 100).write(&mut v, &[]).unwrap(),
            17 => b.udp(53, port).write(&mut v, &[]).unwrap(),
            _ => b.icmpv4_echo_reply(port, 1).write(&mut v, &[]).unwrap(),
        }
        v
    }

    #[test]
    fn programs_agree_with_the_owner_functions() {
        let nat = [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)];
        let ports = (1024, 65535);
        for workers in [1u16, 2, 3, 4, 7] {
            let acc = access_program(workers);
            let core = core_program(workers, &nat, ports);
            for last in 0..=255u8 {
                let sub = [10, 10, 0, last];
                let w = subscriber_worker(Ipv4Addr::from(sub), workers) as u32;
                assert_eq!(
                    run(&acc, 0x0800, &ipv4(sub, [192, 0, 2, 10], 6, 80)),
                    Some(w)
                );
                // Downlink to a subscriber (not NAT): by destination.
                assert_eq!(
                    run(&core, 0x0800, &ipv4([192, 0, 2, 10], sub, 6, 80)),
                    Some(w)
                );
            }
            for port in [1024u16, 1025, 20_000, 33_279, 33_280, 65_535] {
                let w = nat_port_worker(port, ports, workers) as u32;
                for proto in [6u8, 17, 1] {
                    for a in nat {
                        let got = run(
                            &core,
                            0x0800,
                            &ipv4([192, 0, 2, 10], a.octets(), proto, port),
                        )
                        .unwrap();
                        assert_eq!(
                            got % workers as u32,
                            w,
                            "workers {workers} port {port} proto {proto}"
                        );
                    }
                }
            }
            assert_eq!(run(&acc, 0x0806, &[]), Some(0), "ARP to worker 0");
            let cfg = NatConfig {
                addresses: nat.to_vec(),
                ports,
                timeouts: Default::default(),
            };
            let frame = |ip: Vec<u8>| [&[0u8; 12][..], &[0x08, 0x00], &ip].concat();
            for last in [1u8, 2, 77, 200] {
                for (proto, port) in [(6u8, 1024u16), (17, 40_000), (1, 65_535)] {
                    let up = ipv4([10, 10, 0, last], [192, 0, 2, 10], proto, port);
                    let owner = frame_owner(Side::Access, &frame(up.clone()), workers, &cfg);
                    assert_eq!(owner.map(u32::from), run(&acc, 0x0800, &up));
                    let to_nat = ipv4([192, 0, 2, 10], nat[1].octets(), proto, port);
                    let owner = frame_owner(Side::Core, &frame(to_nat.clone()), workers, &cfg);
                    let prog = run(&core, 0x0800, &to_nat).map(|w| w % workers as u32);
                    assert_eq!(owner.map(u32::from), prog, "proto {proto} port {port}");
                    let to_sub = ipv4([192, 0, 2, 10], [10, 10, 0, last], proto, port);
                    let owner = frame_owner(Side::Core, &frame(to_sub.clone()), workers, &cfg);
                    assert_eq!(owner.map(u32::from), run(&core, 0x0800, &to_sub));
                }
            }
            // An ICMP error to a NAT address goes where the packet it quotes came from.
            for (proto, port) in [(6u8, 1024u16), (17, 40_000), (1, 65_535), (17, 33_280)] {
                let quoted = ipv4(nat[0].octets(), [192, 0, 2, 10], proto, port);
                // The quote's source port (a reply built above has it as destination).
                let mut quoted = quoted;
                if proto != 1 {
                    let hl = 20;
                    quoted.swap(hl, hl + 2);
                    quoted.swap(hl + 1, hl + 3);
                }
                for t in [3u8, 11, 12] {
                    let mut err = Vec::new();
                    PacketBuilder::ipv4([198, 51, 100, 1], nat[0].octets(), 64)
                        .icmpv4(etherparse::Icmpv4Type::Unknown {
                            type_u8: t,
                            code_u8: 4,
                            bytes5to8: [0, 0, 5, 0x78],
                        })
                        .write(&mut err, &quoted[..28])
                        .unwrap();
                    let w = nat_port_worker(port, ports, workers);
                    let prog = run(&core, 0x0800, &err).map(|w| w % workers as u32);
                    assert_eq!(
                        prog,
                        Some(u32::from(w)),
                        "type {t} proto {proto} port {port}"
                    );
                    let owner = frame_owner(Side::Core, &frame(err), workers, &cfg);
                    assert_eq!(owner, Some(w));
                }
            }
            let arp = [&[0u8; 12][..], &[0x08, 0x06], &[0; 28]].concat();
            assert_eq!(frame_owner(Side::Access, &arp, workers, &cfg), None);
            assert_eq!(frame_owner(Side::Core, &[0; 20], workers, &cfg), None);
            // IPv6 by its destination's /64 (here all zeros).
            assert_eq!(run(&core, 0x86dd, &[0; 40]), Some(0));
        }
    }

    #[test]
    fn tagged_and_pppoe_frames_are_owned_by_their_inner_packet() {
        use etherparse::VlanId;
        let nat = Ipv4Addr::new(192, 0, 2, 1);
        let cfg = NatConfig {
            addresses: vec![nat],
            ports: (1024, 65535),
            timeouts: Default::default(),
        };
        let eth = || PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1]);
        let vid = |v| VlanId::try_new(v).unwrap();
        let workers = 4;
        for last in [1u8, 2, 3, 4, 77] {
            let sub = [10, 10, 0, last];
            let mut plain = Vec::new();
            eth()
                .ipv4(sub, [192, 0, 2, 10], 64)
                .udp(5000, 53)
                .write(&mut plain, &[])
                .unwrap();
            let want = Some(subscriber_worker(Ipv4Addr::from(sub), workers));
            assert_eq!(frame_owner(Side::Access, &plain, workers, &cfg), want);
            let mut tagged = Vec::new();
            eth()
                .double_vlan(vid(100), vid(200))
                .ipv4(sub, [192, 0, 2, 10], 64)
                .udp(5000, 53)
                .write(&mut tagged, &[])
                .unwrap();
            assert_eq!(frame_owner(Side::Access, &tagged, workers, &cfg), want);
            // PPPoE session 5 around the same IPv4 packet.
            let ip = &plain[14..];
            let mut pppoe = plain[..12].to_vec();
            pppoe.extend_from_slice(&[0x88, 0x64, 0x11, 0x00, 0x00, 0x05]);
            pppoe.extend_from_slice(&(ip.len() as u16 + 2).to_be_bytes());
            pppoe.extend_from_slice(&[0x00, 0x21]);
            pppoe.extend_from_slice(ip);
            assert_eq!(frame_owner(Side::Access, &pppoe, workers, &cfg), want);
        }
        // Downlink to a NAT address in a VLAN: by destination port.
        for port in [1024u16, 20_000, 65_535] {
            let mut f = Vec::new();
            eth()
                .single_vlan(vid(9))
                .ipv4([192, 0, 2, 10], nat.octets(), 64)
                .tcp(80, port, 1, 100)
                .write(&mut f, &[])
                .unwrap();
            assert_eq!(
                frame_owner(Side::Core, &f, workers, &cfg),
                Some(nat_port_worker(port, cfg.ports, workers))
            );
        }
        // IPv6 by the /56 of its subscriber (uplink: the source).
        let mut v6 = Vec::new();
        eth()
            .ipv6([0x20; 16], [0x30; 16], 64)
            .udp(1, 2)
            .write(&mut v6, &[])
            .unwrap();
        let want = prefix_worker(0x2020_2020_2020_2020, workers);
        assert_eq!(frame_owner(Side::Access, &v6, workers, &cfg), Some(want));
    }

    /// What the fanout program sees of `frame`: the kernel takes an 802.1Q or 802.1ad
    /// outer tag off into metadata, so the protocol is the next EtherType and the network
    /// header follows the tag; other frames keep everything after the EtherType.
    fn kernel_view(frame: &[u8]) -> (u16, &[u8]) {
        let et = u16::from_be_bytes([frame[12], frame[13]]);
        if et == 0x8100 || et == 0x88a8 {
            (u16::from_be_bytes([frame[16], frame[17]]), &frame[18..])
        } else {
            (et, &frame[14..])
        }
    }

    #[test]
    fn the_access_program_follows_tags_and_pppoe_like_frame_owner() {
        let cfg = NatConfig {
            addresses: vec![],
            ports: (1024, 65535),
            timeouts: Default::default(),
        };
        // Ethernet, then `tags` (TPID, VID), then `pppoe` (session, PPP protocol) or IPv4.
        let frame = |tags: &[(u16, u16)], pppoe: Option<(u16, u16)>, ip: &[u8]| {
            let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 9];
            for (tpid, vid) in tags {
                f.extend_from_slice(&tpid.to_be_bytes());
                f.extend_from_slice(&vid.to_be_bytes());
            }
            match pppoe {
                Some((id, proto)) => {
                    f.extend_from_slice(&[0x88, 0x64, 0x11, 0x00]);
                    f.extend_from_slice(&id.to_be_bytes());
                    f.extend_from_slice(&(ip.len() as u16 + 2).to_be_bytes());
                    f.extend_from_slice(&proto.to_be_bytes());
                }
                None => f.extend_from_slice(&[0x08, 0x00]),
            }
            f.extend_from_slice(ip);
            f
        };
        let lines: [&[(u16, u16)]; 6] = [
            &[],
            &[(0x8100, 100)],
            &[(0x88a8, 200), (0x8100, 300)],
            &[(0x8100, 200), (0x8100, 300)],
            &[(0x9100, 200), (0x8100, 300)],
            &[(0x9100, 200)],
        ];
        for workers in [1u16, 2, 3, 4, 7] {
            let acc = access_program(workers);
            for last in [1u8, 2, 3, 4, 5, 6, 77, 200] {
                let sub = [10, 10, 0, last];
                let want = subscriber_worker(Ipv4Addr::from(sub), workers);
                let ip = ipv4(sub, [192, 0, 2, 10], 6, 80);
                for tags in lines {
                    for pppoe in [None, Some((7, 0x0021))] {
                        let f = frame(tags, pppoe, &ip);
                        let (proto, net) = kernel_view(&f);
                        assert_eq!(
                            frame_owner(Side::Access, &f, workers, &cfg),
                            Some(want),
                            "{tags:x?} {pppoe:?}"
                        );
                        assert_eq!(
                            run(&acc, proto, net),
                            Some(want as u32),
                            "{tags:x?} {pppoe:?}"
                        );
                    }
                    // IPv6 in a session frame: by the /56 of its source.
                    let mut ip6 = vec![0x60, 0, 0, 0, 0, 0, 17, 64];
                    let src = 0x2001_0db8_0000_0000u64 | u64::from(last) << 8;
                    ip6.extend_from_slice(&src.to_be_bytes());
                    ip6.extend_from_slice(&[0; 24]);
                    let want6 = prefix_worker(src, workers);
                    let f = frame(tags, Some((7, 0x0057)), &ip6);
                    let (proto, net) = kernel_view(&f);
                    assert_eq!(
                        frame_owner(Side::Access, &f, workers, &cfg),
                        Some(want6),
                        "{tags:x?} IPv6 in PPPoE"
                    );
                    assert_eq!(
                        run(&acc, proto, net),
                        Some(want6 as u32),
                        "{tags:x?} IPv6 in PPPoE"
                    );
                    // PPP control in a session frame: punted by whichever worker.
                    let lcp = frame(tags, Some((7, 0xc021)), &[1, 1, 0, 4]);
                    let (proto, net) = kernel_view(&lcp);
                    assert_eq!(frame_owner(Side::Access, &lcp, workers, &cfg), None);
                    assert_eq!(run(&acc, proto, net), Some(0));
                }
            }
            // Discovery, ARP, a third tag: worker 0.
            assert_eq!(run(&acc, 0x8863, &[0x11, 0x09, 0, 0, 0, 0]), Some(0));
            assert_eq!(run(&acc, 0x0806, &[0; 28]), Some(0));
            let three = [0, 1, 0x81, 0x00, 0, 2, 0x81, 0x00, 0, 3, 0x08, 0x00];
            assert_eq!(run(&acc, 0x8100, &three), Some(0));
        }
    }

    /// IPv6 is owned by its subscriber's /64 (source uplink, destination downlink),
    /// untagged or tagged, and the programs agree with [`frame_owner`].
    #[test]
    fn ipv6_is_owned_by_the_subscriber_s_64() {
        let cfg = NatConfig {
            addresses: vec![Ipv4Addr::new(192, 0, 2, 1)],
            ports: (1024, 65535),
            timeouts: Default::default(),
        };
        let frame = |tags: &[(u16, u16)], ip: &[u8]| {
            let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 9];
            for (tpid, vid) in tags {
                f.extend_from_slice(&tpid.to_be_bytes());
                f.extend_from_slice(&vid.to_be_bytes());
            }
            f.extend_from_slice(&[0x86, 0xdd]);
            f.extend_from_slice(ip);
            f
        };
        let lines: [&[(u16, u16)]; 4] = [
            &[],
            &[(0x8100, 100)],
            &[(0x88a8, 200), (0x8100, 300)],
            &[(0x9100, 200), (0x8100, 300)],
        ];
        let server: [u8; 16] = "2001:db8:ff::10"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        for workers in [1u16, 2, 3, 4, 7] {
            let acc = access_program(workers);
            let core = core_program(workers, &cfg.addresses, cfg.ports);
            for n in [
                0u64,
                1,
                0x100,
                0x200,
                0x3ff,
                0x500,
                0x1_0000_0300,
                0xffff_ffff,
            ] {
                let prefix = 0x2001_0db8_0100_0000 | n;
                let want = prefix_worker(prefix, workers);
                let mut sub = [0u8; 16];
                sub[..8].copy_from_slice(&prefix.to_be_bytes());
                sub[15] = 0x11;
                let mut up = Vec::new();
                PacketBuilder::ipv6(sub, server, 64)
                    .udp(5000, 53)
                    .write(&mut up, &[])
                    .unwrap();
                let mut down = Vec::new();
                PacketBuilder::ipv6(server, sub, 64)
                    .udp(53, 5000)
                    .write(&mut down, &[])
                    .unwrap();
                for tags in lines {
                    let f = frame(tags, &up);
                    let (proto, net) = kernel_view(&f);
                    assert_eq!(frame_owner(Side::Access, &f, workers, &cfg), Some(want));
                    assert_eq!(run(&acc, proto, net), Some(want as u32), "{tags:x?}");
                }
                let f = frame(&[], &down);
                assert_eq!(frame_owner(Side::Core, &f, workers, &cfg), Some(want));
                assert_eq!(run(&core, 0x86dd, &down), Some(want as u32));
            }
            // IPv4 to a subscriber still goes by its address behind the IPv6 branch.
            let ip = ipv4([192, 0, 2, 10], [10, 10, 0, 5], 6, 80);
            let w = subscriber_worker(Ipv4Addr::new(10, 10, 0, 5), workers) as u32;
            assert_eq!(run(&core, 0x0800, &ip), Some(w));
        }
    }

    /// The rule of [`prefix_worker`]: the /56 decides. Every /64 of a /56 (so of a
    /// delegated /56 or longer) is owned by one worker, in [`frame_owner`] and in both
    /// programs; consecutive /56s go round the workers.
    #[test]
    fn the_64s_of_a_56_share_a_worker() {
        let cfg = NatConfig {
            addresses: vec![],
            ports: (1024, 65535),
            timeouts: Default::default(),
        };
        let server: [u8; 16] = "2001:db8:ff::10"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        for workers in [2u16, 3, 4, 7] {
            let acc = access_program(workers);
            let core = core_program(workers, &[], cfg.ports);
            let mut seen = Vec::new();
            for n56 in 0..u64::from(workers) {
                let base = 0x2001_0db8_0200_0000 | n56 << 8;
                let want = prefix_worker(base, workers);
                seen.push(want);
                for low in [0u64, 1, 0x7f, 0xff] {
                    let prefix = base | low;
                    assert_eq!(prefix_worker(prefix, workers), want, "{prefix:x}");
                    let mut sub = [0u8; 16];
                    sub[..8].copy_from_slice(&prefix.to_be_bytes());
                    sub[15] = 1;
                    let mut up = Vec::new();
                    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1])
                        .ipv6(sub, server, 64)
                        .udp(5000, 53)
                        .write(&mut up, &[])
                        .unwrap();
                    let mut down = Vec::new();
                    PacketBuilder::ipv6(server, sub, 64)
                        .udp(53, 5000)
                        .write(&mut down, &[])
                        .unwrap();
                    assert_eq!(frame_owner(Side::Access, &up, workers, &cfg), Some(want));
                    assert_eq!(run(&acc, 0x86dd, &up[14..]), Some(u32::from(want)));
                    assert_eq!(run(&core, 0x86dd, &down), Some(u32::from(want)));
                }
            }
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(
                seen.len(),
                workers as usize,
                "consecutive /56s: every worker"
            );
        }
        // The exact word: 2001:db8:0:300::/56 is /56 number 3 of 2001:db8::/48.
        assert_eq!(prefix_worker(0x2001_0db8_0000_0300, 2), 1);
        assert_eq!(prefix_worker(0x2001_0db8_0000_03ff, 2), 1);
        assert_eq!(prefix_worker(0x2001_0db8_0000_0400, 2), 0);
        assert_eq!(prefix_worker(0x2001_0db8_0000_0001, 2), 0);
    }

    /// An L2TP data message to the tunnel address, with every combination of the optional
    /// L2TP fields (Length, Ns/Nr, Offset with and without padding) and of the PPP header
    /// (`ff 03` or not, protocol compressed or not), is owned by the packet inside: IPv4
    /// by its source, IPv6 by its source's /56; on the access side untagged or tagged,
    /// on the core side untagged. [`frame_owner_with`] and both programs agree.
    /// Control messages, PPP control, fragments, another port or address, or L2TP off:
    /// by the outer header, as before.
    #[test]
    fn l2tp_data_is_owned_by_the_packet_inside() {
        let cfg = NatConfig {
            addresses: vec![Ipv4Addr::new(192, 0, 2, 99)],
            ports: (1024, 65535),
            timeouts: Default::default(),
        };
        let lac = Ipv4Addr::new(172, 16, 0, 1);
        let tunnel = Ipv4Addr::new(172, 16, 0, 2);
        let server: [u8; 16] = "2001:db8:ff::10"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        // The L2TP header with `flags` (L, S, O bits; T for control) and `pad` offset bytes.
        let l2tp = |flags: u16, pad: u16, ppp: &[u8], inner: &[u8]| {
            let mut m = Vec::new();
            m.extend_from_slice(&(flags | 2).to_be_bytes());
            let total = 6
                + if flags & 0x4000 != 0 { 2 } else { 0 }
                + if flags & 0x0800 != 0 { 4 } else { 0 }
                + if flags & 0x0200 != 0 { 2 + pad } else { 0 }
                + ppp.len() as u16
                + inner.len() as u16;
            if flags & 0x4000 != 0 {
                m.extend_from_slice(&total.to_be_bytes());
            }
            m.extend_from_slice(&[0, 20, 0, 5]);
            if flags & 0x0800 != 0 {
                m.extend_from_slice(&[0, 7, 0, 3]);
            }
            if flags & 0x0200 != 0 {
                m.extend_from_slice(&pad.to_be_bytes());
                m.extend(std::iter::repeat_n(0xee, pad as usize));
            }
            m.extend_from_slice(ppp);
            m.extend_from_slice(inner);
            m
        };
        // Ethernet with `tags`, IPv4 `src` -> `dst`, UDP to `port`, then `payload`.
        let frame = |tags: &[(u16, u16)], dst: Ipv4Addr, port: u16, payload: &[u8]| {
            let mut ip = Vec::new();
            PacketBuilder::ipv4(lac.octets(), dst.octets(), 64)
                .udp(1701, port)
                .write(&mut ip, payload)
                .unwrap();
            let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 9];
            for (tpid, vid) in tags {
                f.extend_from_slice(&tpid.to_be_bytes());
                f.extend_from_slice(&vid.to_be_bytes());
            }
            f.extend_from_slice(&[0x08, 0x00]);
            f.extend_from_slice(&ip);
            f
        };
        let lines: [&[(u16, u16)]; 3] = [&[], &[(0x8100, 100)], &[(0x88a8, 200), (0x8100, 300)]];
        let ppps: [(&[u8], &[u8]); 4] = [
            (&[0xff, 0x03, 0x00, 0x21], &[0xff, 0x03, 0x00, 0x57]),
            (&[0x00, 0x21], &[0x00, 0x57]),
            (&[0xff, 0x03, 0x21], &[0xff, 0x03, 0x57]),
            (&[0x21], &[0x57]),
        ];
        let flag_sets = [0u16, 0x4000, 0x0800, 0x0200, 0x4a00, 0x4800, 0x0a00];
        let outer = |workers| subscriber_worker(lac, workers);
        for workers in [1u16, 2, 3, 4, 7] {
            let acc = access_program_with(workers, Some(tunnel));
            let core = core_program_with(workers, &cfg.addresses, cfg.ports, Some(tunnel));
            let owner = |side, f: &[u8]| {
                frame_owner_with(side, f, workers, &cfg, &[], Some(tunnel)).map(u32::from)
            };
            for last in [1u8, 2, 3, 4, 5, 6, 77, 200] {
                let sub = [100, 64, 0, last];
                let want4 = u32::from(subscriber_worker(Ipv4Addr::from(sub), workers));
                let v4 = ipv4(sub, [192, 0, 2, 10], 17, 5000);
                let prefix = 0x2001_0db8_0100_0000u64 | u64::from(last) << 8;
                let mut src6 = [0u8; 16];
                src6[..8].copy_from_slice(&prefix.to_be_bytes());
                src6[15] = 1;
                let mut v6 = Vec::new();
                PacketBuilder::ipv6(src6, server, 64)
                    .udp(5000, 53)
                    .write(&mut v6, &[])
                    .unwrap();
                let want6 = u32::from(prefix_worker(prefix, workers));
                for flags in flag_sets {
                    for pad in [0u16, 3] {
                        for (ppp4, ppp6) in ppps {
                            for (ppp, inner, want) in [(ppp4, &v4, want4), (ppp6, &v6, want6)] {
                                let msg = l2tp(flags, pad, ppp, inner);
                                for tags in lines {
                                    let f = frame(tags, tunnel, 1701, &msg);
                                    let (proto, net) = kernel_view(&f);
                                    let what = format!("{flags:x} {pad} {ppp:x?} {tags:x?}");
                                    assert_eq!(owner(Side::Access, &f), Some(want), "{what}");
                                    assert_eq!(run(&acc, proto, net), Some(want), "{what}");
                                }
                                let f = frame(&[], tunnel, 1701, &msg);
                                let got = run(&core, 0x0800, &f[14..]);
                                assert_eq!(owner(Side::Core, &f), Some(want));
                                assert_eq!(got, Some(want), "core {flags:x} {ppp:x?}");
                                // Without L2TP, or before this change: the LAC's owner.
                                assert_eq!(
                                    frame_owner(Side::Access, &f, workers, &cfg),
                                    Some(outer(workers))
                                );
                                let plain = access_program(workers);
                                assert_eq!(
                                    run(&plain, 0x0800, &f[14..]),
                                    Some(u32::from(outer(workers)))
                                );
                            }
                        }
                    }
                }
                // By the outer header: PPP control (LCP, IPCP), a control message, UDP
                // to another port, L2TP to another address, a first fragment.
                let lcp = l2tp(0, 0, &[0xff, 0x03, 0xc0, 0x21], &[1, 1, 0, 4]);
                let ipcp = l2tp(0, 0, &[0x80, 0x21], &[1, 1, 0, 4]);
                let mut control = l2tp(0x4800, 0, &[], &[]);
                control[0] |= 0x80;
                let data = l2tp(0, 0, &[0x00, 0x21], &v4);
                let other = Ipv4Addr::new(172, 16, 0, 3);
                let mut first_fragment = frame(&[], tunnel, 1701, &data);
                first_fragment[14 + 6] |= 0x20;
                let csum = Ipv4HeaderSlice::from_slice(&first_fragment[14..])
                    .unwrap()
                    .to_header()
                    .calc_header_checksum();
                first_fragment[14 + 10..14 + 12].copy_from_slice(&csum.to_be_bytes());
                let cases = [
                    ("lcp", frame(&[], tunnel, 1701, &lcp), tunnel),
                    ("ipcp", frame(&[], tunnel, 1701, &ipcp), tunnel),
                    ("control", frame(&[], tunnel, 1701, &control), tunnel),
                    ("port", frame(&[], tunnel, 1702, &data), tunnel),
                    ("address", frame(&[], other, 1701, &data), other),
                    ("fragment", first_fragment, tunnel),
                ];
                for (what, f, dst) in cases {
                    let up = u32::from(outer(workers));
                    let down = u32::from(subscriber_worker(dst, workers));
                    assert_eq!(owner(Side::Access, &f), Some(up), "{what}");
                    assert_eq!(run(&acc, 0x0800, &f[14..]), Some(up), "{what}");
                    assert_eq!(owner(Side::Core, &f), Some(down), "{what}");
                    assert_eq!(run(&core, 0x0800, &f[14..]), Some(down), "{what}");
                }
            }
            // The rest of the programs is unchanged: IPv4 to a subscriber, to a NAT
            // address by port, ARP.
            let to_sub = ipv4([192, 0, 2, 10], [100, 64, 0, 9], 6, 80);
            let w = u32::from(subscriber_worker(Ipv4Addr::new(100, 64, 0, 9), workers));
            assert_eq!(run(&core, 0x0800, &to_sub), Some(w));
            let to_nat = ipv4([192, 0, 2, 10], cfg.addresses[0].octets(), 17, 40_000);
            let w = u32::from(nat_port_worker(40_000, cfg.ports, workers));
            assert_eq!(
                run(&core, 0x0800, &to_nat).map(|a| a % u32::from(workers)),
                Some(w)
            );
            assert_eq!(run(&acc, 0x0806, &[0; 28]), Some(0));
        }
    }

    #[test]
    fn nat_slices_match_worker_ports() {
        let cfg = crate::table::flow::NatConfig {
            addresses: vec![],
            ports: (1024, 65535),
            timeouts: Default::default(),
        };
        for workers in [1u16, 2, 3, 5] {
            for w in 0..workers {
                let (lo, hi) = cfg.worker_ports(w, workers);
                assert_eq!(nat_port_worker(lo, cfg.ports, workers), w);
                assert_eq!(nat_port_worker(hi, cfg.ports, workers), w);
            }
        }
    }
}
