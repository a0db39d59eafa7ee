# VM plumbing shared by scripts/kernel-matrix.sh and scripts/bench-vm.sh: fetch a Debian
# kernel into the cache, build static binaries, pack an initramfs. Source it after setting
# VM_TAG (the log prefix); it defines log and die.
# shellcheck shell=bash

log() { printf '[%s] %s\n' "$VM_TAG" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$VM_TAG" "$*" >&2; exit 1; }

VM_TRIPLE=x86_64-unknown-linux-gnu
vm_apt_updated=0

# Debian suites this machine's apt may not list, whose kernels the matrix boots (bullseye's
# 5.10): vm_apt_download falls back to a private apt configuration holding them.
VM_OLDER_SUITES=(
  "deb http://deb.debian.org/debian bullseye main"
  "deb http://deb.debian.org/debian-security bullseye-security main"
)

# vm_apt_download PKG DIR CACHE_DIR: apt-get download PKG into DIR, from this machine's
# sources (after an apt-get update if needed), else from VM_OLDER_SUITES through a private
# apt configuration in CACHE_DIR/.apt (this machine's apt state is left alone).
vm_apt_download() {
  local pkg=$1 dir=$2 apt private
  apt=$(cd "$3" && pwd)/.apt
  (cd "$dir" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" 2>/dev/null) && return 0
  if [ $vm_apt_updated = 0 ]; then
    log "apt-get download $pkg failed; running apt-get update and retrying"
    apt-get update -qq || true
    vm_apt_updated=1
  fi
  (cd "$dir" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" 2>/dev/null) && return 0
  log "$pkg is not in this machine's apt sources; trying ${VM_OLDER_SUITES[*]}"
  mkdir -p "$apt/lists/partial" "$apt/sources.list.d"
  printf '%s\n' "${VM_OLDER_SUITES[@]}" >"$apt/sources.list"
  private=(-o Dir::Etc::sourcelist="$apt/sources.list" -o Dir::Etc::sourceparts="$apt/sources.list.d"
    -o Dir::State::Lists="$apt/lists" -o APT::Sandbox::User=root)
  apt-get "${private[@]}" update -qq || true
  (cd "$dir" && apt-get "${private[@]}" download -qq "$pkg")
}

# vm_fetch_kernel PKG CACHE_DIR: caches a Debian kernel package as CACHE_DIR/PKG/{vmlinuz,config};
# a complete entry is reused.
vm_fetch_kernel() {
  local pkg=$1 cache=$2 dir=$2/$1 tmp deb
  [ -s "$dir/vmlinuz" ] && return 0
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
  log "downloading $pkg"
  vm_apt_download "$pkg" "$tmp" "$cache" || {
    rm -rf "$tmp"
    die "apt-get download $pkg failed; list what apt serves with
  apt-cache search --names-only '^linux-image-.*cloud-amd64\$'  and fix ${KERNELS_FILE:-scripts/kernels.txt}"
  }
  deb=$(echo "$tmp"/*.deb)
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*' './boot/config-*' ||
    die "unpacking $deb failed"
  mkdir -p "$tmp/entry"
  mv "$tmp"/boot/vmlinuz-* "$tmp/entry/vmlinuz"
  mv "$tmp"/boot/config-* "$tmp/entry/config"
  rm -rf "$dir"
  mv "$tmp/entry" "$dir"
  rm -rf "$tmp"
}

# vm_build_static TARGET_DIR CARGO_ARGS...: builds static release binaries (a static-pie glibc
# binary runs from an initramfs with nothing else in it); they land in
# TARGET_DIR/$VM_TRIPLE/release.
vm_build_static() {
  local target_dir=$1
  shift
  log "building static binaries: cargo build --release $* (target dir $target_dir)"
  (cd "$ROOT" && RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$target_dir" \
    cargo build --release --target "$VM_TRIPLE" "$@") ||
    die "static build failed (RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build --release --target $VM_TRIPLE $*)"
}

# vm_initramfs OUT INIT BINARY...: packs busybox (as bin/busybox), the static BINARYs (into
# bin/), INIT (as /init) and the shared guest setup into the gzipped cpio archive OUT.
vm_initramfs() {
  local out=$1 init=$2 stage b busybox
  shift 2
  busybox=$(command -v busybox) || die "busybox not found; install busybox-static (scripts/setup.sh --test)"
  command -v cpio >/dev/null || die "cpio not found; install it (scripts/setup.sh --test)"
  command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found; install qemu-system-x86 (scripts/setup.sh --test)"
  for b in "$@" "$busybox"; do
    [ -x "$b" ] || die "missing binary $b"
    if readelf -l "$b" 2>/dev/null | grep -q 'program interpreter'; then
      die "$b is dynamically linked; the VM has no libc (busybox must come from busybox-static)"
    fi
  done
  stage=$(mktemp -d)
  mkdir -p "$stage/bin"
  cp "$busybox" "$stage/bin/busybox"
  cp "$@" "$stage/bin/"
  install -m 0755 "$init" "$stage/init"
  install -m 0644 "$ROOT/scripts/vm-guest-setup.sh" "$stage/guest-setup.sh"
  (cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
  rm -rf "$stage"
  [ -s "$out" ] || die "empty initramfs"
}
