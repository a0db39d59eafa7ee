//! Rebuilds the eBPF object when `bpf-linker` changes, and says how to get it when it is missing.
fn main() {
    match which::which("bpf-linker") {
        Ok(path) => println!("cargo:rerun-if-changed={}", path.display()),
        Err(_) => panic!(
            "bpf-linker not found in PATH; install it with `scripts/setup.sh` \
             (or `cargo +nightly install bpf-linker --version 0.10.3 --locked`)"
        ),
    }
}
