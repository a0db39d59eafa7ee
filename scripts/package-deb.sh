#!/usr/bin/env bash
# Builds the .deb packages of the tapper (tapper), the hub (tapper-hub) and hub-client
# (tapper-hub-client) with cargo-deb: the binaries in /usr/bin, the systemd units, the
# default configs in /etc/tapper/, the hub's system user and state directory, and the bash,
# zsh and fish completions and man pages, generated from the built binaries. Prints the
# packages' paths last, one per line.
#
#   scripts/package-deb.sh                  # release build, packages in target/debian/
#   scripts/package-deb.sh --profile dev    # the debug build (quicker; what the tests use)
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'package-deb.sh: %s\n' "$*" >&2; exit 2; }

profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) [ $# -ge 2 ] || die "--profile needs a cargo profile, e.g. release or dev"
               profile="$2"; shift 2 ;;
    --profile=*) profile="${1#*=}"; shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (use --profile PROFILE)" ;;
  esac
done
command -v cargo-deb >/dev/null \
  || die "cargo-deb is missing: run scripts/setup.sh --test (cargo install --locked cargo-deb)"

bins=(tapper hub hub-client)
cargo build --quiet --profile "$profile" "${bins[@]/#/-p}" >&2

# The profile's output directory, which cargo-deb's target/release/ paths stand for.
target_dir=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
case "$profile" in
  dev|test) out="$target_dir/debug" ;;
  bench) out="$target_dir/release" ;;
  *) out="$target_dir/$profile" ;;
esac

# Completions and man pages come from the binaries themselves (clap_complete, clap_mangen).
assets="$out/package"
mkdir -p "$assets"
for bin in "${bins[@]}"; do
  "$out/$bin" completion bash > "$assets/$bin.bash"
  "$out/$bin" completion zsh > "$assets/_$bin"
  "$out/$bin" completion fish > "$assets/$bin.fish"
  "$out/$bin" man | gzip -9n > "$assets/$bin.1.gz"
done

debs=()
for bin in "${bins[@]}"; do
  # --strip keeps debug builds small; --fast trades package size for build time.
  deb=$(cargo deb --quiet --package "$bin" --no-build --profile "$profile" --strip --fast \
    --output "$target_dir/debian/")
  debs+=("$deb")
done
printf '%s\n' "${debs[@]}"
