# Tollgate: the commands a person types. `make run` and `make test` are the contract:
# they work on a fresh Debian machine with a Rust toolchain, installing what they need.

SHELL := /bin/bash
CARGO ?= cargo
BIN := target/release/tollgate
ROOT := $(shell id -u)
# Debian packages the lab and the netns tests use (installed when running as root).
# DPDK 22.11: libdpdk-dev and the drivers for the dpdk feature (bindgen needs libclang),
# dpdk-dev for dpdk-testpmd (scripts/compare-testpmd.sh). The AF_XDP backend: libbpf-dev
# (libbpf 1.0+) and clang to build its XDP program, linux-libc-dev for the kernel's
# headers.
DEB_PACKAGES := iproute2 ethtool iperf3 arping curl iputils-ping python3 procps tcpdump \
                pppoe python3-scapy isc-dhcp-client kea-dhcp4-server kea-dhcp6-server \
                freeradius freeradius-utils tshark xl2tpd l2tpns \
                libdpdk-dev dpdk dpdk-dev clang libclang-dev pkg-config \
                libbpf-dev linux-libc-dev postgresql
# Cargo features of the DPDK build, for every crate that has one.
DPDK_FEATURES := --features tollgate/dpdk,tollgate-tools/dpdk,tollgate-control/dpdk,tollgate-dataplane/dpdk,dpdk-sys/dpdk
HAVE_DPDK = $(shell pkg-config --exists 'libdpdk >= 22.11' 2>/dev/null && echo 1)
# The AF_XDP backend (backend = "af_xdp") is built in wherever libbpf and clang are: a
# fresh machine builds without it until `make deps` (which `make run` and `make test` run
# first as root) installs them. Evaluated when a recipe runs, so after deps.
HAVE_XDP = $(shell pkg-config --exists 'libbpf >= 1.0' 2>/dev/null && command -v clang >/dev/null && echo 1)
XDP_FEATURE = $(if $(HAVE_XDP),--features af_xdp)
XDP_FEATURES := --features tollgate/af_xdp,tollgate-control/af_xdp,tollgate-dataplane/af_xdp,xdp-sys/xdp

.PHONY: all build build-dpdk run test deps check-cargo unit netns-test host-test dpdk-test lab-test l2tp-test l2tp-ppp-test pppoe-test lns-test lac-test xl2tpd-test ipv6-test dhcpv6-test ipoe-test nat64-test \
        lint fmt bench bench-build bench-pipeline cluster-bench perf-deps compare-kernel plot fuzz fuzz-build \
        profile replay lab-up lab-down compare-testpmd clean help

all: build

help:
	@echo "make run       start the gateway in the netns lab (root), or replay the sample capture"
	@echo "make test      install what is needed, then run every test (unit, replay, netns, host, lab, lint)"
	@echo "make bench     criterion benches of the forwarding path; prints Mpps and ns/packet"
	@echo "make bench-pipeline   tollgate bench: full pipeline at 1k..10M flows (JSON in target/bench)"
	@echo "make cluster-bench    accounting records/s into PostgreSQL; a month of 100 000 records closed on PostgreSQL vs SQLite (root)"
	@echo "make profile   instructions per packet (callgrind): forwarding and full pipeline, vs io-only"
	@echo "make compare-kernel   kernel forwarding + nftables NAT vs tollgate, same veth lab (root)"
	@echo "make plot      docs/perf/mpps-vs-flows.png from target/bench/bench.json"
	@echo "make lint      cargo fmt --check and clippy -D warnings (also with the dpdk and af_xdp features where installed)"
	@echo "make netns-test / host-test   the ignored tests that need root: AF_PACKET and AF_XDP in namespaces; FreeRADIUS, radclient, ICMP"
	@echo "make build-dpdk   release binary with the DPDK backend (needs libdpdk-dev; docs/dpdk.md)"
	@echo "make dpdk-test    the DPDK backend against net_ring/net_null/net_tap vdevs (no hugepages)"
	@echo "make compare-testpmd   testpmd macswap vs Tollgate on the same net_null pair and core"
	@echo "make fuzz      run each libFuzzer target for FUZZ_SECONDS (default 60), coverage-guided"
	@echo "make replay    replay config/samples/*.pcap and print the counters"
	@echo "make lab-up / lab-down   build or remove the netns lab (scripts/lab.sh)"
	@echo "make l2tp-test two gateways as LAC and LNS in netns, PPP sessions: TCP, tshark, consolidation, loss, xl2tpd (root)"
	@echo "make l2tp-ppp-test Tollgate LAC -> Tollgate LNS with PPPoE clients: consolidation moves a PPP session, no datagram lost (root)"
	@echo "make nat64-test  NAT64: an IPv6-only subscriber reaches IPv4 servers and a VIP, in netns (root)"
	@echo "make lns-test  l2tpns as PPPoE server and LAC -> Tollgate as LNS terminating PPP, in netns (root)"
	@echo "make xl2tpd-test xl2tpd as LAC -> Tollgate as LNS up to pppd: tunnel, call, LCP Configure-Request, CDN, StopCCN (root)"
	@echo "make pppoe-test PPPoE in netns: rp-pppoe pppoe -A, a scapy client (CHAP, PAP, IPCP, traffic, session timeout) (root)"
	@echo "make ipv6-test IPv6 in netns: kernel SLAAC logs in by MAC, gets its /64, ping -6 through the gateway, counters exact (root)"
	@echo "make dhcpv6-test DHCPv6 in netns: dhclient -6 IA_NA + IA_PD, ping -6 from both through the gateway, counters exact, release (root)"
	@echo "make ipoe-test  IPoE by DHCPv4 in netns: dhclient -4 and -r, traffic counted, restart keeps the lease, VLAN/QinQ, accounting (root)"

check-cargo:
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust 1.95+ (https://rustup.rs), then run make again" >&2; exit 1; }

build: check-cargo
	@[ -n "$(HAVE_XDP)" ] || echo "note: building without the AF_XDP backend: libbpf-dev (1.0+) or clang is missing; make deps as root installs them"
	$(CARGO) build --release -p tollgate $(XDP_FEATURE)

# The same binary with the DPDK port backend (backend = "dpdk").
build-dpdk: check-cargo
	$(CARGO) build --release -p tollgate --features dpdk $(if $(HAVE_XDP),--features af_xdp)

# Installs the Debian packages the lab and netns tests need; a no-op when they are there.
# The RADIUS tests run their own FreeRADIUS on free loopback ports: the system daemon the
# Debian package enables (1812/1813) is neither needed nor wanted, so it is disabled; so are
# xl2tpd's and l2tpns's (the L2TP labs run their own in a namespace), Kea's (the IPoE lab
# runs its own) and PostgreSQL's cluster (the database tests initdb their own on a free
# loopback port).
deps:
	@if [ "$(ROOT)" = 0 ]; then \
	  missing=""; \
	  for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  fi; \
	  for svc in freeradius xl2tpd l2tpns kea-dhcp4-server kea-dhcp6-server postgresql; do \
	    if command -v systemctl >/dev/null && systemctl is-enabled $$svc >/dev/null 2>&1; then \
	      systemctl disable --now $$svc >/dev/null 2>&1 || true; \
	    fi; \
	  done; \
	else \
	  echo "not root: not installing packages (the lab and netns tests need root)"; \
	fi

# The first release build takes minutes on a small machine: say so before it starts. As
# root the packages come first (libbpf and clang among them), so that a fresh machine's
# binary has every backend.
run: check-cargo
	@echo "make run: building the release binary first (cargo build --release: a few minutes the first time, seconds after)"
	@if [ "$(ROOT)" = 0 ]; then $(MAKE) --no-print-directory deps; fi
	@$(MAKE) --no-print-directory build
	@if [ "$(ROOT)" = 0 ]; then \
	  TOLLGATE_BIN=$(BIN) scripts/lab.sh run; \
	else \
	  echo "make run needs root to build the network-namespace lab; replaying the bundled sample capture instead."; \
	  echo "(run 'sudo make run' for the live gateway)"; echo; \
	  $(MAKE) --no-print-directory replay; \
	fi

replay: build
	@mkdir -p target/replay
	$(BIN) replay --config config/samples/replay.toml \
	  --access-in config/samples/access-in.pcap --core-in config/samples/core-in.pcap \
	  --access-out target/replay/access-out.pcap --core-out target/replay/core-out.pcap
	@echo; echo "outputs: target/replay/access-out.pcap target/replay/core-out.pcap (tcpdump -nn -e -r FILE)"

test: check-cargo deps unit netns-test host-test dpdk-test lab-test l2tp-test l2tp-ppp-test pppoe-test lns-test lac-test xl2tpd-test ipv6-test dhcpv6-test ipoe-test nat64-test lint bench-build fuzz-build
	@echo "make test: all passed"

# Tests that need something of the machine are #[ignore]d with the reason and the target
# below that runs them: `cargo test` reports them as ignored, never as passed.
unit:
	$(CARGO) build --workspace --all-targets
	$(CARGO) test --workspace

# AF_PACKET and AF_XDP port tests against real veth pairs in network namespaces. As root,
# `deps` installed libbpf and clang, so the AF_XDP tests must run.
netns-test:
	@if [ "$(ROOT)" = 0 ]; then \
	  $(CARGO) test -p tollgate-dataplane --test af_packet --test af_packet_ring --no-run && \
	  $(CARGO) test -p tollgate-dataplane --test af_packet -- --ignored --test-threads=1 && \
	  $(CARGO) test -p tollgate-dataplane --test af_packet_ring -- --ignored --test-threads=1 && \
	  if [ -n "$(HAVE_XDP)" ]; then \
	    $(CARGO) test -p tollgate-dataplane --features af_xdp --test af_xdp --no-run && \
	    $(CARGO) test -p tollgate-dataplane --features af_xdp --test af_xdp -- --ignored --test-threads=1; \
	  else echo "libbpf or clang not found although deps ran" >&2; exit 1; fi; \
	else echo "SKIPPED netns tests: they need root"; fi

# Tests against a real FreeRADIUS and radclient (installed by `deps`), the ICMP health
# check (an ICMP socket), and PostgreSQL 15 (the ledger tests on PostgreSQL, accounting
# delivery across a database restart, bad URLs and passwords; each test runs initdb and
# pg_ctl as the postgres user on a loopback port in 55400-55499): the control library's
# ignored unit tests and the daemon's (tests/cluster.rs: two daemons on one PostgreSQL;
# three on AF_PACKET veths with their subscribers and servers in tgk-* namespaces, one
# killed with -9 and taken over, docs/cluster.md).
# As root they must run.
host-test:
	@if [ "$(ROOT)" = 0 ]; then \
	  $(CARGO) test -p tollgate-control --lib -- --ignored && \
	  $(CARGO) test -p tollgate --test pppoe --test cluster --test radius --test aaa -- --ignored; \
	else echo "SKIPPED host tests (FreeRADIUS, radclient, ICMP socket, PostgreSQL): they need root (make deps installs FreeRADIUS and PostgreSQL)"; fi

# The DPDK backend on vdevs without hugepages: ring devices driven from the test (exact
# frames and counters, two workers with handoff, short tx, leaks), then the daemon as a
# process (EAL and device errors, net_null, a kernel pinging it through net_tap).
# As root, `deps` installed DPDK, so the tests must run.
dpdk-test: check-cargo
	@if [ -n "$(HAVE_DPDK)" ]; then \
	  $(CARGO) test -p tollgate-dataplane --features dpdk --test dpdk && \
	  $(CARGO) test -p tollgate --features dpdk --test dpdk_daemon -- \
	    $$([ "$(ROOT)" = 0 ] && echo --include-ignored); \
	elif [ "$(ROOT)" = 0 ]; then echo "DPDK not found by pkg-config although deps ran" >&2; exit 1; \
	else echo "SKIPPED DPDK tests: libdpdk-dev is not installed (make deps as root)"; fi

compare-testpmd: check-cargo
	scripts/compare-testpmd.sh

# Real kernel TCP (curl, iperf3), ARP and ICMP through the gateway in the netns lab,
# with one worker and with two: on AF_PACKET (fanout) and on AF_XDP (one queue per
# worker, handoff).
lab-test: build
	@if [ "$(ROOT)" = 0 ]; then \
	  TOLLGATE_BIN=$(BIN) scripts/lab.sh test && \
	  TOLLGATE_BIN=$(BIN) TOLLGATE_LAB_WORKERS=2 scripts/lab.sh test && \
	  TOLLGATE_BIN=$(BIN) TOLLGATE_LAB_BACKEND=af_xdp scripts/lab.sh test && \
	  TOLLGATE_BIN=$(BIN) TOLLGATE_LAB_BACKEND=af_xdp TOLLGATE_LAB_WORKERS=2 scripts/lab.sh test; \
	else echo "SKIPPED lab test: it needs root"; fi

# Two Tollgates as LAC and LNS in network namespaces (scripts/l2tp-lab.sh), carrying PPP
# sessions of 12 scapy PPPoE clients switched by realm: kernel TCP (curl, iperf3) over PPP
# through a TUN relay, tshark's dissection of the line, the consolidation scenario with
# sequence-numbered flows, 10% control-message loss, xl2tpd as a foreign LNS.
l2tp-test: build
	@if [ "$(ROOT)" = 0 ]; then \
	  TOLLGATE_BIN=$(BIN) scripts/l2tp-lab.sh test; \
	else echo "SKIPPED l2tp lab test: it needs root"; fi

# Consolidation of PPP sessions between a Tollgate LAC and a Tollgate LNS
# (scripts/l2tp-ppp-lab.sh): three scapy PPPoE clients of a consolidating customer (one
# by its realm, two by the tunnel attributes of the LAC's FreeRADIUS Access-Accept, whose
# Tunnel-Assignment-Id names the customer) in tunnels of two sessions; one ends, another's call moves with its PPP session
# up, and two numbered UDP streams through the move lose no datagram (counted at the
# server behind the LNS).
l2tp-ppp-test: build
	@if [ "$(ROOT)" = 0 ]; then \
	  TOLLGATE_BIN=$(BIN) scripts/l2tp-ppp-lab.sh test; \
	else echo "SKIPPED l2tp-ppp lab test: it needs root"; fi

# PPPoE with real clients in network namespaces (scripts/pppoe-lab.sh): rp-pppoe's
# `pppoe -A` gets the PADO; a scapy PPPoE client does discovery, LCP, CHAP or PAP against
# the local store, IPCP, UDP to a server namespace (counted both ends), and gets LCP
# Terminate-Request and PADT at its session timeout; dual stack with [ipv6]: IPv6CP, RS
# and RA over PPP, SLAAC, ping6, DHCPv6 IA_NA/IA_PD over PPP, per-family counters.
pppoe-test: build
	@if [ "$(ROOT)" = 0 ]; then \
	  TOLLGATE_BIN=$(BIN) scripts/pppoe-lab.sh test; \
	else echo "SKIPPED pppoe lab test: it needs root"; fi

# Tollgate as LNS for another vendor's LAC (scripts/l2tpns-lab.sh): l2tpns is the PPPoE
# server and forwards the realm isp.example over L2TP; a scapy PPPoE client negotiates
# LCP, PAP and IPCP with Tollgate through it, sends UDP both ways (counted exactly at
# Tollgate), and gets LCP Terminate-Request then the CDN on `ctl session remove`; then
# the same with two Tollgate workers (the LAC's and the subscriber's on different ones).
lns-test: build
	@if [ "$(ROOT)" = 0 ]; then \
	  TOLLGATE_BIN=$(BIN) scripts/l2tpns-lab.sh test; \
	else echo "SKIPPED lns lab test: it needs root"; fi

# Tollgate as LAC for another vendor's LNS (scripts/lac-lab.sh): a scapy PPPoE client's
# realm isp.example is switched to l2tpns (proxy LCP and PAP in the ICCN); l2tpns
# authenticates it through its own FreeRADIUS and runs IPCP; UDP both ways through the
# fast path's PPPoE <-> L2TP switching is counted exactly at Tollgate; `ctl tunnel session
# remove` sends the CDN to l2tpns and PADT to the client; a second user is switched by
# the RFC 2868 tunnel attributes of Tollgate's own FreeRADIUS Access-Accept.
lac-test: build
	@if [ "$(ROOT)" = 0 ]; then \
	  TOLLGATE_BIN=$(BIN) scripts/lac-lab.sh test; \
	else echo "SKIPPED lac lab test: it needs root"; fi

# xl2tpd (Debian) as LAC -> Tollgate as LNS (scripts/xl2tpd-lab.sh), without and with the
# tunnel secret: SCCRQ..SCCCN (Challenge/Response both ways), ICRQ..ICCN, Tollgate's LCP
# Configure-Request in the call (tshark, byte by byte), then xl2tpd's CDN (its pppd exits:
# no kernel PPP here) and StopCCN; `ctl show tunnels` stats and the lns_* counters exact.
xl2tpd-test: build
	@if [ "$(ROOT)" = 0 ]; then \
	  TOLLGATE_BIN=$(BIN) scripts/xl2tpd-lab.sh test; \
	else echo "SKIPPED xl2tpd lab test: it needs root"; fi

# IPv6 for an IPoE subscriber in network namespaces (scripts/ipv6-lab.sh): the kernel's
# own SLAAC; its RS logs it in by MAC, the RA gives it its /64 (global address past DAD),
# ping -6 reaches a server namespace through the gateway, the session's counters are
# exact, and the final RA withdraws the default route when the session ends.
ipv6-test: build
	@if [ "$(ROOT)" = 0 ]; then \
	  TOLLGATE_BIN=$(BIN) scripts/ipv6-lab.sh test; \
	else echo "SKIPPED ipv6 lab test: it needs root"; fi
# DHCPv6 for an IPoE subscriber in network namespaces (scripts/dhcpv6-lab.sh): isc-dhcp-client's
# `dhclient -6 -N -P` logs in by MAC and binds an IA_NA address and an IA_PD /56, ping -6
# from both reaches a server namespace, counted exactly in the one session; tshark checks
# the exchange and the RA's M and O flags; `dhclient -6 -r` takes the prefix back.
dhcpv6-test: build
	@if [ "$(ROOT)" = 0 ]; then \
	  TOLLGATE_BIN=$(BIN) scripts/dhcpv6-lab.sh test; \
	else echo "SKIPPED dhcpv6 lab test: it needs root"; fi
# NAT64 for an IPv6-only subscriber in network namespaces (scripts/nat64-lab.sh): SLAAC
# from Tollgate, then ping -6, curl -6 and UDP to 64:ff9b::192.0.2.10 reach an IPv4 server
# (from the pool address), curl -6 to a VIP's 64:ff9b:: address is balanced over its
# three servers; nat64 counters and the session's counters exact.
nat64-test: build
	@if [ "$(ROOT)" = 0 ]; then \
	  TOLLGATE_BIN=$(BIN) scripts/nat64-lab.sh test; \
	else echo "SKIPPED nat64 lab test: it needs root"; fi
# IPoE subscribers by DHCPv4 in network namespaces (scripts/ipoe-lab.sh): isc-dhcp-client's
# `dhclient -4` gets an address from the pool, the session is shown and its traffic
# counted exactly, a restart keeps the lease (lease file), `dhclient -r` ends it; a scapy
# client does the same on an 802.1Q and a QinQ line and logs in by option 82; a small RADIUS
# accounting server checks every Start and Stop with its counters; relay mode to Kea.
ipoe-test: build
	@if [ "$(ROOT)" = 0 ]; then \
	  TOLLGATE_BIN=$(BIN) scripts/ipoe-lab.sh test; \
	else echo "SKIPPED ipoe lab test: it needs root"; fi

lint: check-cargo
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	scripts/check-core-lints.sh
	scripts/check-layering.sh
	scripts/check-spec-table.sh
	@if [ -n "$(HAVE_DPDK)" ]; then \
	  echo "$(CARGO) clippy (dpdk feature)"; \
	  $(CARGO) clippy -p dpdk-sys -p tollgate-dataplane -p tollgate-control -p tollgate-tools -p tollgate --all-targets \
	    $(DPDK_FEATURES) -- -D warnings; \
	else echo "SKIPPED clippy of the dpdk feature: libdpdk-dev is not installed"; fi
	@if [ -n "$(HAVE_XDP)" ]; then \
	  echo "$(CARGO) clippy (af_xdp feature)"; \
	  $(CARGO) clippy -p xdp-sys -p tollgate-dataplane -p tollgate-control -p tollgate --all-targets \
	    $(XDP_FEATURES) -- -D warnings; \
	else echo "SKIPPED clippy of the af_xdp feature: libbpf-dev or clang is not installed"; fi

fmt:
	$(CARGO) fmt --all

bench-build:
	$(CARGO) bench -p tollgate-benches --no-run

bench: check-cargo
	$(CARGO) bench -p tollgate-benches
	@scripts/bench-summary.sh

# The full pipeline at 1k, 100k, 1M and 10M flows (about 6 GiB at 10M), and its JSON.
BENCH_FLOWS ?= 1k,100k,1M,10M
# Issue 18's benchmark (root: it starts its own PostgreSQL, as the host tests do; not in
# `make test`). CLUSTER_BENCH = accounting records, usage records, runs.
CLUSTER_BENCH ?= 50000 100000 3
cluster-bench: check-cargo
	$(CARGO) run --release -p tollgate-control --example cluster_bench -- $(CLUSTER_BENCH)

bench-pipeline: build
	@mkdir -p target/bench
	$(BIN) bench --flows $(BENCH_FLOWS) --json | tee target/bench/bench.json
	@python3 scripts/bench-table.py target/bench/bench.json

# What the performance scripts need beyond the lab's packages: nftables for the kernel
# comparison, valgrind for profiles, matplotlib for the plot.
PERF_PACKAGES := nftables valgrind python3-matplotlib util-linux
perf-deps:
	@if [ "$(ROOT)" = 0 ]; then \
	  missing=""; \
	  for p in $(PERF_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  fi; \
	else echo "not root: install $(PERF_PACKAGES) yourself"; fi

# deps before build: libbpf and clang for the AF_XDP backend the comparison runs.
compare-kernel: check-cargo deps perf-deps
	$(MAKE) --no-print-directory build
	TOLLGATE_BIN=$(BIN) scripts/compare-kernel.sh

# matplotlib comes from Debian's python3-matplotlib (make perf-deps), for /usr/bin/python3.
PYTHON_PLOT ?= /usr/bin/python3
plot:
	@mkdir -p docs/perf
	$(PYTHON_PLOT) scripts/plot-bench.py docs/perf/mpps-vs-flows.png target/bench/bench.json \
	  $(wildcard docs/perf/bench-before.json)

# The fuzz targets (fuzz/fuzz_targets) build on stable; `make fuzz` adds the
# sanitizer-coverage passes that make libFuzzer coverage-guided.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := pipeline config ctl_request radius_packet l2tp_control pppoe_discovery ppp_control gateway_pppoe dhcpv4 dhcpv6 ipv6
FUZZ_FLAGS := -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks
HOST := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')

fuzz-build:
	$(CARGO) build --manifest-path fuzz/Cargo.toml

fuzz:
	RUSTFLAGS="$(FUZZ_FLAGS)" $(CARGO) build --release --manifest-path fuzz/Cargo.toml \
	  --target $(HOST) --target-dir fuzz/target/cov
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/corpus/$$t fuzz/artifacts/$$t; \
	  echo "fuzzing $$t for $(FUZZ_SECONDS) s"; \
	  set -o pipefail; fuzz/target/cov/$(HOST)/release/$$t fuzz/corpus/$$t -artifact_prefix=fuzz/artifacts/$$t/ \
	    -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2>&1 | grep -E "^(Done|stat::number_of_executed_units)|panicked|ERROR" || exit 1; \
	done

profile: check-cargo
	scripts/profile.sh

lab-up:
	scripts/lab.sh up

lab-down:
	scripts/lab.sh down

clean:
	$(CARGO) clean
