# VM plumbing shared by scripts/kernel-matrix.sh, scripts/bench-vm.sh and the static builds:
# fetch a Debian kernel (x86_64 or arm64) into the cache, build static binaries for an
# architecture, pack an initramfs, pick qemu. Source it after setting
# VM_TAG (the log prefix); it defines log and die.
# shellcheck shell=bash

log() { printf '[%s] %s\n' "$VM_TAG" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$VM_TAG" "$*" >&2; exit 1; }

# vm_triple ARCH: the Rust target triple of a static build for ARCH (x86_64 or aarch64).
vm_triple() {
  case $1 in
    x86_64 | aarch64) echo "$1-unknown-linux-gnu" ;;
    *) die "unknown architecture '$1' (x86_64 or aarch64)" ;;
  esac
}

# vm_kernel_arch PKG: the architecture of a Debian kernel package (its name ends in Debian's
# name for it: -amd64, -arm64).
vm_kernel_arch() {
  case $1 in
    *-arm64) echo aarch64 ;;
    *) echo x86_64 ;;
  esac
}

# Debian suites this machine's apt may not list, whose kernels the matrix boots (bullseye's
# 5.10): the private apt configuration below lists them too.
VM_OLDER_SUITES=("debian bullseye" "debian-security bullseye-security")
vm_apt_updated=0

# vm_private_apt ARCH CACHE_DIR APT_GET_ARGS...: apt-get through a private configuration in
# CACHE_DIR/apt-<debian arch>, for ARCH's packages only: this release's suites and
# VM_OLDER_SUITES. Its package lists are fetched on first use; the machine's apt state is
# left alone.
vm_private_apt() {
  local deb_arch dir codename suite opts
  local key=/usr/share/keyrings/debian-archive-keyring.gpg
  case $1 in
    x86_64) deb_arch=amd64 ;;
    aarch64) deb_arch=arm64 ;;
    *) die "no Debian architecture known for $1" ;;
  esac
  mkdir -p "$2/apt-$deb_arch"
  dir=$(cd "$2/apt-$deb_arch" && pwd)
  shift 2
  opts=(-o Dir::Etc::sourcelist="$dir/sources.list" -o Dir::Etc::sourceparts="$dir/sources.list.d"
    -o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" -o APT::Sandbox::User=root
    -o APT::Architecture="$deb_arch" -o APT::Architectures="$deb_arch")
  if [ ! -s "$dir/sources.list" ]; then
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/sources.list.d"
    for suite in "debian $codename" "debian $codename-updates" "debian-security $codename-security" \
      "${VM_OLDER_SUITES[@]}"; do
      echo "deb [arch=$deb_arch signed-by=$key] http://deb.debian.org/${suite% *} ${suite#* } main"
    done >"$dir/sources.list"
  fi
  if [ "$1" != update ] && ! compgen -G "$dir/lists/*_Packages*" >/dev/null; then
    apt-get -qq "${opts[@]}" update || die "apt-get update for $deb_arch failed (sources: $dir/sources.list)"
  fi
  apt-get -qq "${opts[@]}" "$@"
}

# vm_apt_download ARCH PKG CACHE_DIR: apt-get download ARCH's PKG into the current directory.
# The host's architecture tries this machine's apt first (after an apt-get update if needed);
# any other package comes through vm_private_apt.
vm_apt_download() {
  local arch=$1 pkg=$2 cache=$3
  if [ "$arch" = "$(uname -m)" ]; then
    apt-get download -qq -o APT::Sandbox::User=root "$pkg" 2>/dev/null && return 0
    if [ $vm_apt_updated = 0 ]; then
      log "apt-get download $pkg failed; running apt-get update and retrying"
      apt-get update -qq || true
      vm_apt_updated=1
      apt-get download -qq -o APT::Sandbox::User=root "$pkg" 2>/dev/null && return 0
    fi
    log "$pkg is not in this machine's apt sources; trying a private configuration with ${VM_OLDER_SUITES[*]}"
  fi
  vm_private_apt "$arch" "$cache" download "$pkg" ||
    { vm_private_apt "$arch" "$cache" update && vm_private_apt "$arch" "$cache" download "$pkg"; }
}

# vm_fetch_kernel PKG CACHE_DIR: caches a Debian kernel package as CACHE_DIR/PKG/{vmlinuz,config};
# a complete entry is reused.
vm_fetch_kernel() {
  local pkg=$1 cache dir=$2/$1 tmp deb arch
  [ -s "$dir/vmlinuz" ] && return 0
  arch=$(vm_kernel_arch "$pkg")
  cache=$(mkdir -p "$2" && cd "$2" && pwd) # absolute: apt runs in a temporary directory
  tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
  log "downloading $pkg"
  (cd "$tmp" && vm_apt_download "$arch" "$pkg" "$cache") || {
    rm -rf "$tmp"
    die "apt-get download $pkg failed; list what apt serves with
  apt-cache search --names-only '^linux-image-.*cloud-$(echo "$pkg" | sed 's/.*-//')\$'  and fix ${KERNELS_FILE:-scripts/kernels.txt}"
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

# vm_cc ARCH: the C compiler (and linker) for ARCH: gcc on the host's arch, else the Debian
# cross gcc (gcc-aarch64-linux-gnu).
vm_cc() {
  local gcc=gcc
  [ "$1" = "$(uname -m)" ] || gcc=$1-linux-gnu-gcc
  command -v "$gcc" >/dev/null || die "$gcc not found; install gcc-$1-linux-gnu (scripts/setup.sh --test)"
  echo "$gcc"
}

# vm_build_static TARGET_DIR ARCH CARGO_ARGS...: builds static release binaries for ARCH (a
# static-pie glibc binary runs from an initramfs with nothing else in it); they land in
# TARGET_DIR/$(vm_triple ARCH)/release. aarch64 links with gcc-aarch64-linux-gnu.
vm_build_static() {
  local target_dir=$1 arch=$2 triple env=()
  triple=$(vm_triple "$arch")
  shift 2
  if [ "$triple" != "$(rustc -vV | sed -n 's/^host: //p')" ]; then
    rustup target list --installed 2>/dev/null | grep -qx "$triple" ||
      die "the Rust target $triple is missing; run: rustup target add $triple (scripts/setup.sh --test)"
    local gcc var=${triple//-/_}
    gcc=$(vm_cc "$arch")
    env=("CARGO_TARGET_${var^^}_LINKER=$gcc" "CC_$var=$gcc")
  fi
  log "building static binaries for $triple: cargo build --release $* (target dir $target_dir)"
  (cd "$ROOT" && env "${env[@]}" RUSTFLAGS="-C target-feature=+crt-static" \
    CARGO_TARGET_DIR="$target_dir" cargo build --release --target "$triple" "$@") ||
    die "static build failed (RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build --release --target $triple $*)"
}

# vm_busybox ARCH CACHE_DIR: prints the path of a static busybox for ARCH: the host's
# (busybox-static) or busybox-static:<debian arch>, fetched into CACHE_DIR once.
vm_busybox() {
  local arch=$1 cache dir=$2/busybox-$1 tmp
  if [ "$arch" = "$(uname -m)" ]; then
    command -v busybox || die "busybox not found; install busybox-static (scripts/setup.sh --test)"
    return
  fi
  if [ ! -x "$dir/busybox" ]; then
    log "downloading busybox-static for $arch"
    cache=$(mkdir -p "$2" && cd "$2" && pwd)
    tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
    (cd "$tmp" && vm_apt_download "$arch" busybox-static "$cache") &&
      dpkg-deb -x "$tmp"/busybox-static_*.deb "$tmp/root" ||
      { rm -rf "$tmp"; die "fetching busybox-static for $arch failed"; }
    mkdir -p "$dir"
    mv "$tmp/root/bin/busybox" "$dir/busybox"
    rm -rf "$tmp"
  fi
  echo "$dir/busybox"
}

# vm_qemu ARCH: sets VM_QEMU (qemu for ARCH's machine, to run with -accel and -cpu), VM_TCG_CPU
# (the emulated CPU) and VM_CONSOLE (the serial console for the kernel command line).
vm_qemu() {
  local package
  case $1 in
    x86_64) VM_QEMU=(qemu-system-x86_64) VM_TCG_CPU=max VM_CONSOLE=ttyS0 package=qemu-system-x86 ;;
    # pauth-impdef: a cheaper pointer-authentication hash, the same behaviour under TCG.
    aarch64) VM_QEMU=(qemu-system-aarch64 -M virt) VM_TCG_CPU=max,pauth-impdef=on VM_CONSOLE=ttyAMA0 package=qemu-system-arm ;;
    *) die "no qemu known for $1" ;;
  esac
  command -v "${VM_QEMU[0]}" >/dev/null || die "${VM_QEMU[0]} not found; install $package (scripts/setup.sh --test)"
}

# vm_initramfs OUT INIT BUSYBOX BINARY...: packs BUSYBOX (as bin/busybox), the static BINARYs
# (into bin/), INIT (as /init) and the shared guest setup into the gzipped cpio archive OUT.
vm_initramfs() {
  local out=$1 init=$2 busybox=$3 stage b
  shift 3
  command -v cpio >/dev/null || die "cpio not found; install it (scripts/setup.sh --test)"
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
