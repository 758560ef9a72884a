//! Without the `xdp` feature: nothing (the crate is empty, no libbpf or clang needed).
//!
//! With it: finds libbpf with pkg-config (`libbpf`, 1.0 or later), compiles the XDP
//! program (`bpf/xsk_redirect.bpf.c`) with clang for the `bpf` target into `OUT_DIR`,
//! compiles the shim (`shim/xdp_shim.c`), and generates bindings for an allowlist of
//! libbpf functions with bindgen.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "xdp")]
    xdp::build();
}

#[cfg(feature = "xdp")]
mod xdp {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// libbpf functions the port calls, all at set-up: opening and loading the program,
    /// its maps, and what the interface has attached.
    const FUNCTIONS: &[&str] = &[
        "bpf_object__open_mem",
        "bpf_object__load",
        "bpf_object__close",
        "bpf_object__find_program_by_name",
        "bpf_object__find_map_by_name",
        "bpf_program__fd",
        "bpf_map__fd",
        "bpf_map_update_elem",
        "bpf_map_lookup_elem",
        "bpf_map_delete_elem",
        "bpf_xdp_query_id",
        "libbpf_num_possible_cpus",
        "tg_xdp_.*",
    ];

    const VARS: &[&str] = &[
        "XDP_FLAGS_UPDATE_IF_NOEXIST",
        "XDP_FLAGS_SKB_MODE",
        "XDP_FLAGS_DRV_MODE",
        "XDP_FLAGS_HW_MODE",
        "BPF_ANY",
    ];

    pub fn build() {
        println!("cargo:rerun-if-changed=shim/xdp_shim.h");
        println!("cargo:rerun-if-changed=shim/xdp_shim.c");
        println!("cargo:rerun-if-changed=bpf/xsk_redirect.bpf.c");
        println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
        println!("cargo:rerun-if-env-changed=CLANG");
        let lib = pkg_config::Config::new()
            .atleast_version("1.0")
            .probe("libbpf")
            .unwrap_or_else(|e| {
                panic!(
                    "libbpf not found by pkg-config ({e}).\n\
                     The `af_xdp` feature needs libbpf 1.0 or later and clang: on Debian 12, \
                     `apt-get install libbpf-dev clang libclang-dev pkg-config` (or `make deps` \
                     as root); build without `--features af_xdp` otherwise."
                )
            });
        let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
        let includes = include_dirs(&lib.include_paths);
        compile_program(&out, &includes);

        let mut cc = cc::Build::new();
        cc.file("shim/xdp_shim.c").warnings(true).opt_level(2);
        for p in &lib.include_paths {
            cc.include(p);
        }
        cc.compile("tollgate_xdp_shim");

        let mut b = bindgen::Builder::default()
            .header("shim/xdp_shim.h")
            .clang_args(
                lib.include_paths
                    .iter()
                    .map(|p| format!("-I{}", p.display())),
            )
            .use_core()
            .ctypes_prefix("::core::ffi")
            .default_enum_style(bindgen::EnumVariation::Consts)
            .prepend_enum_name(false)
            .generate_comments(false)
            .layout_tests(true)
            .opaque_type("bpf_object")
            .opaque_type("bpf_program")
            .opaque_type("bpf_map")
            .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
        for f in FUNCTIONS {
            b = b.allowlist_function(f);
        }
        for v in VARS {
            b = b.allowlist_var(v);
        }
        b.generate()
            .unwrap_or_else(|e| panic!("bindgen failed on shim/xdp_shim.h: {e}"))
            .write_to_file(out.join("bindings.rs"))
            .expect("writing bindings.rs");
    }

    /// Where the kernel's UAPI headers are: libbpf's include paths, and the multiarch
    /// directory that holds `asm/` on Debian (the `bpf` target has no default for it).
    fn include_dirs(lib: &[PathBuf]) -> Vec<PathBuf> {
        let mut dirs = lib.to_vec();
        let target = std::env::var("TARGET").unwrap_or_default();
        let arch = target.split('-').next().unwrap_or("x86_64");
        let multiarch = match arch {
            "arm" | "armv7" => "arm-linux-gnueabihf".to_string(),
            a => format!("{a}-linux-gnu"),
        };
        let dir = Path::new("/usr/include").join(multiarch);
        if dir.is_dir() {
            dirs.push(dir);
        }
        dirs
    }

    /// `clang -O2 -g -target bpf`: the program and its BTF (libbpf reads the maps'
    /// definitions from it) into `OUT_DIR/xsk_redirect.bpf.o`.
    fn compile_program(out: &Path, includes: &[PathBuf]) {
        let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
        let obj = out.join("xsk_redirect.bpf.o");
        let mut cmd = Command::new(&clang);
        cmd.args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf"]);
        for d in includes {
            cmd.arg(format!("-I{}", d.display()));
        }
        cmd.args(["-c", "bpf/xsk_redirect.bpf.c", "-o"]).arg(&obj);
        let status = cmd.status().unwrap_or_else(|e| {
            panic!(
                "running {clang} to compile the XDP program failed ({e}): the `af_xdp` \
                 feature needs clang (apt-get install clang, or set CLANG)"
            )
        });
        assert!(
            status.success(),
            "{clang} could not compile bpf/xsk_redirect.bpf.c ({status}); it needs the \
             kernel's UAPI headers (linux-libc-dev) and libbpf's (libbpf-dev)"
        );
    }
}
