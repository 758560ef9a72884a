//! Without the `dpdk` feature: nothing (the crate is empty, no DPDK needed).
//!
//! With it: finds DPDK with pkg-config (`libdpdk`, 22.11 or later), generates bindings for
//! an allowlist of functions and types with bindgen, and compiles the shim (`shim/shim.c`)
//! that wraps DPDK's `static inline` burst functions.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "dpdk")]
    dpdk::build();
}

#[cfg(feature = "dpdk")]
mod dpdk {
    use std::path::PathBuf;
    use std::process::Command;

    /// Functions Tollgate calls: EAL, ethdev set-up and statistics, mempools, rings, and
    /// the shim. The fast path uses only the shim's burst functions.
    const FUNCTIONS: &[&str] = &[
        "rte_eal_init",
        "rte_eal_cleanup",
        "rte_strerror",
        "rte_socket_id",
        "rte_lcore_to_socket_id",
        "rte_thread_register",
        "rte_thread_unregister",
        "rte_eth_dev_configure",
        "rte_eth_dev_adjust_nb_rx_tx_desc",
        "rte_eth_dev_start",
        "rte_eth_dev_stop",
        "rte_eth_dev_close",
        "rte_eth_dev_info_get",
        "rte_eth_dev_get_port_by_name",
        "rte_eth_dev_get_name_by_port",
        "rte_eth_dev_is_valid_port",
        "rte_eth_dev_socket_id",
        "rte_eth_rx_queue_setup",
        "rte_eth_tx_queue_setup",
        "rte_eth_macaddr_get",
        "rte_eth_promiscuous_enable",
        "rte_eth_stats_get",
        "rte_eth_link_get_nowait",
        "rte_pktmbuf_pool_create",
        "rte_mempool_free",
        "rte_mempool_avail_count",
        "rte_mempool_in_use_count",
        "rte_vdev_init",
        "rte_vdev_uninit",
        "rte_eth_from_rings",
        "rte_ring_create",
        "rte_ring_free",
        "tg_.*",
    ];

    /// Types whose layout Rust needs (the mbuf's data fields, port configuration).
    const TYPES: &[&str] = &[
        "rte_mbuf",
        "rte_eth_conf",
        "rte_eth_dev_info",
        "rte_eth_stats",
        "rte_ether_addr",
        "rte_eth_link",
        "rte_eth_rx_mq_mode",
        "rte_eth_tx_mq_mode",
    ];

    const VARS: &[&str] = &[
        "RTE_MAX_ETHPORTS",
        "SOCKET_ID_ANY",
        "RING_F_SP_ENQ",
        "RING_F_SC_DEQ",
    ];

    pub fn build() {
        println!("cargo:rerun-if-changed=shim/shim.h");
        println!("cargo:rerun-if-changed=shim/shim.c");
        println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
        let lib = pkg_config::Config::new()
            .atleast_version("22.11")
            .probe("libdpdk")
            .unwrap_or_else(|e| {
                panic!(
                    "DPDK not found by pkg-config ({e}).\n\
                     The `dpdk` feature needs DPDK 22.11 or later: on Debian 12, \
                     `apt-get install libdpdk-dev clang libclang-dev pkg-config` \
                     (or `make deps` as root); build without `--features dpdk` otherwise."
                )
            });
        // Drivers Tollgate calls directly (ring ports for tests and benches, vdev creation);
        // the EAL loads the other drivers as plugins.
        for l in ["rte_net_ring", "rte_bus_vdev"] {
            println!("cargo:rustc-link-lib=dylib={l}");
        }
        // Every cflag (`-include rte_config.h`, `-march=...`), not only the include paths.
        let cflags = pkg_config_cflags();

        let mut cc = cc::Build::new();
        cc.file("shim/shim.c").warnings(true).opt_level(3);
        for p in &lib.include_paths {
            cc.include(p);
        }
        for f in &cflags {
            cc.flag(f);
        }
        cc.compile("tollgate_dpdk_shim");

        let mut b = bindgen::Builder::default()
            .header("shim/shim.h")
            .clang_args(&cflags)
            .use_core()
            .ctypes_prefix("::core::ffi")
            .default_enum_style(bindgen::EnumVariation::Consts)
            .prepend_enum_name(false)
            .derive_default(true)
            .generate_comments(false)
            .layout_tests(true)
            .opaque_type("rte_mempool")
            .opaque_type("rte_ring")
            .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
        for f in FUNCTIONS {
            b = b.allowlist_function(f);
        }
        for t in TYPES {
            b = b.allowlist_type(t);
        }
        for v in VARS {
            b = b.allowlist_var(v);
        }
        let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
        b.generate()
            .unwrap_or_else(|e| panic!("bindgen failed on shim/shim.h: {e}"))
            .write_to_file(out.join("bindings.rs"))
            .expect("writing bindings.rs");
    }

    fn pkg_config_cflags() -> Vec<String> {
        let pc = std::env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".into());
        let out = Command::new(&pc)
            .args(["--cflags", "libdpdk"])
            .output()
            .unwrap_or_else(|e| panic!("running {pc} --cflags libdpdk: {e}"));
        assert!(
            out.status.success(),
            "{pc} --cflags libdpdk failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Split on whitespace, keeping `-include FILE` as two arguments.
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}
