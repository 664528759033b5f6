#!/usr/bin/env bash
# Installs the Debian packages that building and testing replicate need (`make deps`, run by `make check`).
# Idempotent: asks dpkg which are missing and runs apt-get only for those; one line when all are present.
set -euo pipefail

pkgs=(
  build-essential pkg-config libcurl4-openssl-dev libxml2-dev libssl-dev libev-dev libcjson-dev libcmocka-dev
  libisal-dev                             # s3/checksum.c: SIMD CRC32 and CRC32C (ISA-L)
  zlib1g-dev                              # manifests stored in the target are gzip-compressed (manifest/chain.c)
  ceph-mon ceph-osd radosgw ceph-common   # the test S3 server (Ceph RGW on loopback, scripts/rgw.sh)
  awscli rclone                           # independent clients: the checker in tests, the peers in make bench
  curl iproute2 procps python3 jq time    # commands the scripts use: curl, ss, pgrep/ps/free, python3, jq,
                                          # /usr/bin/time (bench); the rest (flock, setsid, timeout, awk, ...)
                                          # are in Debian's essential/required packages
  groff-base man-db systemd               # scripts/check-docs.sh: groff, man --warnings, systemd-analyze verify
  dpkg-dev lintian                        # make deb: dpkg-shlibdeps, dpkg-deb (and strip, from build-essential)
  prometheus                              # promtool: test_metrics checks the textfile and tests the alert rules
  openssl stunnel4                        # test_tls: a private CA and a TLS proxy in front of RGW
  python3-yaml                            # scripts/check-docs.sh: the schema check of scripts/k8s/*.yaml
  faketime                                # test_clock_skew: replicate with this machine's clock 40 min off
)
if [ "${1:-}" = fuzz ]; then pkgs+=(clang libclang-rt-dev); fi # `make fuzz` only: clang and its libFuzzer runtime

missing=()
for p in "${pkgs[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#pkgs[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: run as root (or: sudo apt-get install -y --no-install-recommends ${missing[*]})" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
echo "deps: installed ${#missing[@]} package(s)"
