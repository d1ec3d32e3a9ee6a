//! Generates the DPDK bindings and compiles the C shims, only when the `bind`
//! feature is on; without it the crate is empty and needs no DPDK.
//! `flow.c` (in the shim unit) translates dtnet's flow rules into rte_flow.
//!
//! The system's libdpdk is found with `pkg-config libdpdk` (Debian's
//! `libdpdk-dev`), and must be DPDK 22.11. bindgen (which needs libclang,
//! Debian's `libclang-dev`) binds only the allowlisted functions and the
//! types they reach, so the bindings stay small. The shims are two units:
//! `shim.c` with the pkg-config flags, and `gfni.c`, which on x86_64 also
//! gets GFNI and AVX-512 so DPDK's header defines `rte_thash_gfni_bulk`; the
//! choice to call it is made at run time.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "bind")]
    bind::generate();
}

#[cfg(feature = "bind")]
mod bind {
    use std::env;
    use std::path::PathBuf;
    use std::process::Command;

    /// The DPDK release the bindings are written against (major.minor).
    const DPDK_RELEASE: &str = "22.11";

    /// The DPDK libraries dtnet calls into (the PMDs themselves are loaded
    /// by EAL as plugins; net_ring is linked for `rte_eth_from_rings`).
    const LIBS: &[&str] = &["rte_eal", "rte_ethdev", "rte_mbuf", "rte_mempool", "rte_ring", "rte_hash", "rte_net_ring"];

    /// Functions bindgen binds (regular expressions); the types they use
    /// come along.
    const FUNCTIONS: &[&str] = &[
        "dtnet_.*",
        "rte_eal_init",
        "rte_eal_cleanup",
        "rte_eal_get_runtime_dir",
        "rte_eal_process_type",
        "rte_strerror",
        "rte_pktmbuf_pool_create",
        "rte_mempool_free",
        "rte_mempool_avail_count",
        "rte_mempool_in_use_count",
        "rte_ring_create",
        "rte_ring_free",
        "rte_eth_from_rings",
        "rte_eth_dev_count_avail",
        "rte_eth_find_next_owned_by",
        "rte_eth_dev_get_port_by_name",
        "rte_eth_dev_get_name_by_port",
        "rte_eth_dev_info_get",
        "rte_eth_dev_configure",
        "rte_eth_rx_queue_setup",
        "rte_eth_tx_queue_setup",
        "rte_eth_dev_start",
        "rte_eth_dev_stop",
        "rte_eth_dev_close",
        "rte_eth_promiscuous_enable",
        "rte_eth_macaddr_get",
        "rte_eth_dev_rss_hash_update",
        "rte_eth_dev_rss_hash_conf_get",
        "rte_eth_dev_rss_reta_update",
        "rte_eth_dev_rss_reta_query",
        "rte_eth_stats_get",
        "rte_eth_stats_reset",
        "rte_eth_xstats_get",
        "rte_eth_xstats_get_names",
        "rte_eth_link_get_nowait",
        "rte_thash_complete_matrix",
    ];

    /// Constants the wrapper uses (`wrapper.h` spells out the macro values).
    const VARS: &[&str] = &["DTNET_.*"];

    pub fn generate() {
        let cflags = pkg_config(&["--cflags", "libdpdk"]);
        check_version();
        let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
        let csrc = manifest.join("csrc");
        for file in ["wrapper.h", "shim.h", "shim.c", "gfni.c", "flow.h", "flow.c"] {
            println!("cargo:rerun-if-changed={}", csrc.join(file).display());
        }
        println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
        compile_shims(&csrc, &cflags);
        write_bindings(&csrc, &cflags);
        for lib in LIBS {
            println!("cargo:rustc-link-lib=dylib={lib}");
        }
    }

    /// The whitespace-separated output of `pkg-config ARGS`, or a build
    /// failure that says what to install.
    fn pkg_config(args: &[&str]) -> Vec<String> {
        let output = Command::new("pkg-config").args(args).output();
        match output {
            Ok(out) if out.status.success() => {
                String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect()
            }
            _ => panic!(
                "dpdk-sys (feature `bind`): `pkg-config {}` failed: DPDK {DPDK_RELEASE} is needed \
                 (Debian: apt-get install libdpdk-dev libclang-dev pkg-config)",
                args.join(" ")
            ),
        }
    }

    /// Refuses a libdpdk other than 22.11: the shims and the wrapper follow
    /// that release's ABI.
    fn check_version() {
        let version = pkg_config(&["--modversion", "libdpdk"]).concat();
        if !version.starts_with(&format!("{DPDK_RELEASE}.")) && version != DPDK_RELEASE {
            panic!("dpdk-sys (feature `bind`): found libdpdk {version}, but these bindings need DPDK {DPDK_RELEASE}");
        }
    }

    fn compile_shims(csrc: &std::path::Path, cflags: &[String]) {
        let mut shim = cc::Build::new();
        shim.file(csrc.join("shim.c")).file(csrc.join("flow.c")).define("ALLOW_EXPERIMENTAL_API", None);
        let mut gfni = cc::Build::new();
        gfni.file(csrc.join("gfni.c")).define("ALLOW_EXPERIMENTAL_API", None);
        // DPDK marks the helpers rte_thash_gfni_bulk inlines as internal, and
        // its header trips a false maybe-uninitialized warning.
        gfni.flag_if_supported("-Wno-maybe-uninitialized");
        gfni.define("ALLOW_INTERNAL_API", None);
        for flag in cflags {
            shim.flag(flag);
            gfni.flag(flag);
        }
        if env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64") {
            for flag in ["-mgfni", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx512vbmi"] {
                gfni.flag(flag);
            }
        }
        shim.compile("dtnet_dpdk_shim");
        gfni.compile("dtnet_dpdk_gfni");
    }

    fn write_bindings(csrc: &std::path::Path, cflags: &[String]) {
        let mut builder = bindgen::Builder::default()
            .header(csrc.join("wrapper.h").to_string_lossy())
            .clang_args(cflags)
            .clang_arg("-DALLOW_EXPERIMENTAL_API")
            .opaque_type("rte_mbuf")
            .opaque_type("rte_mempool")
            .opaque_type("rte_ring")
            .derive_default(true)
            .layout_tests(false)
            .generate_comments(false)
            .prepend_enum_name(false)
            .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
        for function in FUNCTIONS {
            builder = builder.allowlist_function(function);
        }
        builder = builder.allowlist_type("dtnet_.*");
        for var in VARS {
            builder = builder.allowlist_var(var);
        }
        let bindings = builder.generate().expect("dpdk-sys: bindgen could not bind DPDK's headers");
        let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
        bindings.write_to_file(out.join("bindings.rs")).expect("dpdk-sys: cannot write bindings.rs");
    }
}
