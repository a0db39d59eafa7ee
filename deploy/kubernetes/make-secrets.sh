#!/usr/bin/env bash
# Makes the four Secrets the manifests mount, with openssl: a CA (`tapper-hub-ca`, ca.crt,
# for the tappers), the hub's certificate signed by it with the in-cluster names as SANs
# (`tapper-hub-tls`), a report token for the tappers (`tapper-report`) and the hub's tokens
# file with it and a read token (`tapper-hub-tokens`). Writes them as manifests into DIR and
# prints their paths; `--apply` also applies them (and the namespace) with kubectl. DIR keeps the CA's key and
# the read token (read.token, for hub-client): keep it private.
#   make-secrets.sh [--out DIR] [--apply]     (DIR defaults to ./tapper-secrets)
set -euo pipefail

NAMESPACE=tapper-system
SERVICE=tapper-hub
DAYS=825

die() { printf 'make-secrets.sh: error: %s\n' "$*" >&2; exit 1; }

out=tapper-secrets
apply=false
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    --apply) apply=true; shift ;;
    -h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1': the arguments are --out DIR and --apply" ;;
  esac
done
command -v openssl >/dev/null || die "openssl not found: install it (apt-get install openssl)"
$apply && { command -v kubectl >/dev/null || die "--apply needs kubectl on PATH; without --apply, apply the printed files yourself"; }
[ -e "$out/ca.key" ] && die "$out already holds a CA (ca.key): remove $out or pass another --out, so no key is overwritten"

umask 077
mkdir -p "$out" || die "cannot create $out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ssl() { openssl "$@" 2>"$work/err" || die "openssl $1 failed: $(tr '\n' ' ' <"$work/err")"; }
token() { ssl rand -hex 32; }

ssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
  -subj "/CN=tapper CA" -keyout "$out/ca.key" -out "$out/ca.crt" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
ssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$SERVICE" \
  -keyout "$out/hub.key" -out "$work/hub.csr"
cat >"$work/hub.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:$SERVICE,DNS:$SERVICE.$NAMESPACE,DNS:$SERVICE.$NAMESPACE.svc,DNS:$SERVICE.$NAMESPACE.svc.cluster.local,DNS:localhost
EXT
ssl x509 -req -in "$work/hub.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
  -days "$DAYS" -extfile "$work/hub.ext" -out "$out/hub.crt"
rm -f "$out/ca.srl"

report=$(token)
read=$(token)
printf '%s\n' "$read" >"$out/read.token"

b64() { base64 -w0; }
# secret NAME TYPE KEY=VALUE...: one Secret manifest, the values base64-encoded.
secret() {
  local name=$1 type=$2 file="$out/$1.yaml"
  shift 2
  {
    printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n' "$name" "$NAMESPACE"
    printf '  labels:\n    app.kubernetes.io/part-of: tapper\ntype: %s\ndata:\n' "$type"
    local kv
    for kv in "$@"; do
      printf '  %s: %s\n' "${kv%%=*}" "$(printf '%s' "${kv#*=}" | b64)"
    done
  } >"$file"
  echo "$file"
}
secret tapper-hub-tls kubernetes.io/tls "tls.crt=$(cat "$out/hub.crt")
" "tls.key=$(cat "$out/hub.key")
"
secret tapper-hub-tokens Opaque "tokens=report $report
read $read
"
secret tapper-hub-ca Opaque "ca.crt=$(cat "$out/ca.crt")
"
secret tapper-report Opaque "token=$report
"

if $apply; then
  kubectl apply -f "$(dirname "$0")/00-namespace.yaml" >&2 || die "kubectl apply -f 00-namespace.yaml failed"
  for f in "$out"/tapper-*.yaml; do
    kubectl apply -f "$f" >&2 || die "kubectl apply -f $f failed"
  done
fi
