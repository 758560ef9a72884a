/* SPDX-License-Identifier: Apache-2.0
 *
 * Tollgate's XDP program: every frame goes to the AF_XDP socket of the receive queue it
 * arrived on, except the frames the operator leaves to the kernel (`af_xdp.kernel_*` in
 * the config), which continue up the kernel's stack. A queue without a socket (the
 * moment between attaching and binding, or a queue no worker serves) also passes its
 * frames to the kernel: XDP_PASS is bpf_redirect_map's fallback.
 *
 * Built by ffi/xdp/build.rs with `clang -O2 -g -target bpf`; loaded, configured and
 * attached by the AF_XDP port (dataplane/src/port/af_xdp). The port writes the rules into
 * the `rules` map before it attaches the program, and each worker's socket into `xsks`
 * at its queue. The layout of `struct tg_rules` is mirrored in Rust (`xdp_sys::Rules`). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TG_MAX_QUEUES 256
#define TG_MAX_RULES 8

struct tg_prefix {
	__be32 addr; /* network byte order, already masked */
	__be32 mask;
};

struct tg_rules {
	__u32 ethertypes; /* entries of `ethertype` in use */
	__u32 prefixes;   /* entries of `prefix` in use */
	__be16 ethertype[TG_MAX_RULES];
	struct tg_prefix prefix[TG_MAX_RULES];
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, TG_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tg_rules);
} rules SEC(".maps");

/* Frames passed to the kernel by a rule, per CPU (index 0). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} to_kernel SEC(".maps");

struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

/* Whether a rule leaves this frame to the kernel. An ethertype rule matches the outer
 * ethertype or, behind one 802.1Q/802.1ad tag, the inner one; a prefix rule matches the
 * IPv4 destination of an untagged or single-tagged frame. */
static __always_inline int leave_to_kernel(struct xdp_md *ctx, const struct tg_rules *r)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 off = sizeof(*eth);
	__be16 outer, proto;
	int i;

	if ((void *)(eth + 1) > end)
		return 0;
	outer = proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_tag *v = data + off;

		if ((void *)(v + 1) > end)
			return 0;
		proto = v->proto;
		off += sizeof(*v);
	}
#pragma unroll
	for (i = 0; i < TG_MAX_RULES; i++) {
		if (i < r->ethertypes && (r->ethertype[i] == outer || r->ethertype[i] == proto))
			return 1;
	}
	if (r->prefixes && proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + off;

		if ((void *)(ip + 1) > end)
			return 0;
#pragma unroll
		for (i = 0; i < TG_MAX_RULES; i++) {
			if (i < r->prefixes && (ip->daddr & r->prefix[i].mask) == r->prefix[i].addr)
				return 1;
		}
	}
	return 0;
}

SEC("xdp")
int tollgate_xsk(struct xdp_md *ctx)
{
	__u32 zero = 0;
	const struct tg_rules *r = bpf_map_lookup_elem(&rules, &zero);

	if (r && (r->ethertypes | r->prefixes) && leave_to_kernel(ctx, r)) {
		__u64 *n = bpf_map_lookup_elem(&to_kernel, &zero);

		if (n)
			*n += 1;
		return XDP_PASS;
	}
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

char LICENSE[] SEC("license") = "Apache-2.0";
