//! Compiles the eBPF programs (crate `tapper-ebpf`) for the BPF target with nightly, so the
//! agent can embed the object with `include_bytes_aligned!`.
fn main() -> anyhow::Result<()> {
    let package = aya_build::Package {
        name: "tapper-ebpf",
        root_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../tapper-ebpf"),
        ..Default::default()
    };
    aya_build::build_ebpf([package], aya_build::Toolchain::Nightly).map_err(|err| {
        anyhow::anyhow!(
            "building the eBPF programs failed: {err:#}\n\
             they need the nightly toolchain with rust-src and bpf-linker 0.10.3; \
             `scripts/setup.sh` installs them"
        )
    })
}
