#!/usr/bin/env bash
# `make deb`: builds build/replicate_VERSION-1_ARCH.deb from this tree without debian/ packaging:
# a hardened build (dpkg-buildflags) in build/deb/obj, `make install DESTDIR=build/deb/root PREFIX=/usr`,
# the binary stripped, copyright, changelog.Debian.gz, md5sums, Depends from dpkg-shlibdeps (run on a
# minimal debian/control in a temp dir), `dpkg-deb --root-owner-group --build`, then lintian if installed.
#
# lintian (--pedantic) must report no error or warning apart from LINTIAN_EXCEPTIONS below: the tags a
# package built outside the Debian archive cannot avoid. README.md ("Installing") lists them too.
# Environment: DEB_MAINTAINER="Name <address>" (default: git's user.name/user.email, else the last
# commit's author), DEB_REVISION (default 1).
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

for tool in dpkg-deb dpkg-shlibdeps dpkg-buildflags strip gzip md5sum; do
  command -v "$tool" >/dev/null || { echo "deb: $tool is missing (apt-get install dpkg-dev binutils, or make deps)" >&2; exit 1; }
done

version=$(sed -n 's/^#define REPLICATE_VERSION "\(.*\)"$/\1/p' replicator/options.h)
[ -n "$version" ] || { echo "deb: no REPLICATE_VERSION in replicator/options.h" >&2; exit 1; }
revision=${DEB_REVISION:-1}
arch=$(dpkg --print-architecture)
# the maintainer: DEB_MAINTAINER, else git's user.name/user.email, else the author of the last commit
maint=${DEB_MAINTAINER:-}
if [ -z "$maint" ] && git config user.name >/dev/null && git config user.email >/dev/null; then
  maint="$(git config user.name) <$(git config user.email)>"
fi
[ -n "$maint" ] || maint=$(git log -1 --format='%an <%ae>' 2>/dev/null || true)
[ -n "$maint" ] || { echo "deb: set DEB_MAINTAINER='Name <address>' (or git config user.name/email)" >&2; exit 1; }
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=""
git diff --quiet HEAD 2>/dev/null || dirty=" (with local changes)"
# reproducible: the date of the commit, not of the build
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
date_rfc2822=$(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" -R)

out=build/deb
stage=$out/root
pkg=build/replicate_${version}-${revision}_${arch}.deb
rm -rf "$stage" "$pkg"
mkdir -p "$stage/DEBIAN"
umask 022

# ---- the hardened build and the staged install (a build dir of its own: other flags than `make`)
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
CFLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)" \
  LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" \
  make --no-print-directory BUILD=$out/obj install DESTDIR="$stage" PREFIX=/usr
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/replicate"

# ---- /usr/share/doc/replicate: copyright and changelog.Debian.gz
doc=$stage/usr/share/doc/replicate
install -d "$doc"
year=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y)
cat >"$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: replicate
Upstream-Contact: $maint
Comment: This package was built from the replicate source tree with "make deb"; it is not part of
 Debian. The source tree does not ship the AWS Signature Version 4 test suite it uses in its tests
 (tests/sigv4/) in this package.

Files: *
Copyright: $year The replicate authors
License: no-license-granted
 The replicate authors have not published replicate under a licence yet. Until they do, all rights are
 reserved: this package may be used where its authors have allowed it, and may not be redistributed.
EOF
gzip -9n >"$doc/changelog.Debian.gz" <<EOF
replicate ($version-$revision) unstable; urgency=medium

  * Built with "make deb" from the source tree at commit $commit
    of the replicate repository$dirty.

 -- $maint  $date_rfc2822
EOF
chmod 0644 "$doc/copyright" "$doc/changelog.Debian.gz"

# ---- Depends: dpkg-shlibdeps on the staged binary, with the minimal debian/control it needs
shl=$(mktemp -d)
trap 'rm -rf "$shl"' EXIT
mkdir -p "$shl/debian"
printf 'Source: replicate\n\nPackage: replicate\nArchitecture: any\n' >"$shl/debian/control"
depends=$(cd "$shl" && dpkg-shlibdeps -O -e"$root/$stage/usr/bin/replicate" 2>"$shl/err" |
  sed -n 's/^shlibs:Depends=//p') || { cat "$shl/err" >&2; exit 1; }
[ -n "$depends" ] || { echo "deb: dpkg-shlibdeps found no dependencies" >&2; cat "$shl/err" >&2; exit 1; }

# ---- DEBIAN/control and md5sums
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<EOF
Package: replicate
Version: $version-$revision
Architecture: $arch
Maintainer: $maint
Installed-Size: $size
Depends: $depends
Suggests: systemd | cron
Section: utils
Priority: optional
Description: back up an S3 bucket into a versioned, never-deleted bucket
 replicate copies an S3-compatible bucket (AWS S3, Backblaze B2, Wasabi,
 Cloudflare R2, Ceph RGW, MinIO, ...) into a target bucket with versioning
 enabled, at the same provider or another one, and never deletes anything on
 either side. It repeats delta passes until a pass is short, can run the last
 pass with the application in maintenance mode for an exact copy, records
 every run in a manifest kept in the target, and verifies and restores
 backups.
 .
 This package ships the program, its manual page, bash completion, and
 systemd units (replicate@.service, replicate@.timer) for scheduled runs.
EOF
(cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' md5sum) \
  >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"
find "$stage" -type d -exec chmod 0755 {} +

dpkg-deb --root-owner-group -Zxz --build "$stage" "$pkg" >/dev/null
echo "deb: built $pkg"
dpkg-deb --info "$pkg" | sed -n 's/^ \(Version\|Depends\|Installed-Size\):/deb:   \1:/p'

# ---- lintian: errors and warnings fail, except the tags a package built outside the archive cannot avoid
LINTIAN_EXCEPTIONS=(
  # a first Debian revision should close its ITP (Intent To Package) bug; a package that is not meant
  # for the Debian archive has no ITP bug to close
  initial-upload-closes-no-bugs
)
if command -v lintian >/dev/null; then
  suppress=$(IFS=,; echo "${LINTIAN_EXCEPTIONS[*]}")
  echo "deb: lintian $pkg"
  # as root lintian says "running with root privileges is not recommended!": true, and harmless here
  lintian --info --display-info --pedantic --fail-on error,warning ${suppress:+--suppress-tags "$suppress"} \
    "$pkg" 2> >(grep -v '^running with root privileges is not recommended!$' >&2)
  echo "deb: lintian: no errors or warnings${suppress:+ (apart from the accepted: $suppress)}"
else
  echo "deb: lintian is not installed (apt-get install lintian, or make deps): not checked"
fi
