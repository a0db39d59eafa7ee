#!/usr/bin/env bash
# Installs, idempotently, what building and running the tapper and the hub need: gcc (the
# linker), protoc, the nightly toolchain's rust-src and bpf-linker (the eBPF programs), and
# the tracefs and bpffs mounts. `--test` adds the test servers and tools
# (scripts/lib/test-tools.sh): PostgreSQL, Prometheus, Alertmanager, containerd, podman,
# qemu (x86_64 and aarch64), the aarch64 cross linker and Rust target, chromium, debootstrap,
# cargo-deb, rustfmt, clippy and the Python test clients.
# Needs root and rustup (https://rustup.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

test_tools=false
for arg in "$@"; do
  case "$arg" in
    --test) test_tools=true ;;
    -h | --help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg': run it without arguments (build and run) or with --test (also the test tools)" ;;
  esac
done

[ "$(id -u)" = 0 ] || die "run as root (apt-get, cargo install and pip install need it): prefix sudo if you are not root"
. scripts/lib/rust-path.sh
. scripts/lib/test-tools.sh

# gcc with libc6-dev: the linker of every Rust binary (and the stack tests' workload);
# protobuf-compiler: protoc for the k8s-cri crate (the tapper's CRI client).
APT_PACKAGES=(gcc libc6-dev protobuf-compiler)
$test_tools && APT_PACKAGES+=("${TEST_APT_PACKAGES[@]}")
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

command -v rustup >/dev/null || die "rustup not found: install it as root with \`curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y\`, then run this again"
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

if $test_tools; then
  if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    log "adding rustfmt and clippy (scripts/test.sh lints with them)"
    rustup component add rustfmt clippy || die "rustup component add rustfmt clippy failed"
  fi
  for target in "${TEST_RUST_TARGETS[@]}"; do
    if ! rustup target list --installed | grep -qx "$target"; then
      log "adding the Rust target $target (the static cross build for the arm64 VM and images)"
      rustup target add "$target" || die "rustup target add $target failed"
    fi
  done
  if ! command -v cargo-deb >/dev/null; then
    log "building cargo-deb (scripts/package-deb.sh; a few minutes)"
    cargo install --locked cargo-deb || die "cargo install --locked cargo-deb failed"
  fi
  if ! python3 -c "import $TEST_PY_MODULES" 2>/dev/null; then
    log "installing Python test clients: ${TEST_PIP_PACKAGES[*]}"
    python3 -m pip install -q --root-user-action=ignore "${TEST_PIP_PACKAGES[@]}" \
      || die "pip install ${TEST_PIP_PACKAGES[*]} failed"
  fi
fi

mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
log "ok"
