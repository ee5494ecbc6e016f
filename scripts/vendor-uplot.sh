#!/usr/bin/env bash
# Vendors the dashboard's chart library, uPlot, from the npm registry at a
# pinned version, checking the tarball against the registry's integrity
# hash. The page needs no build step: the files are committed under
# internal/ui/assets/vendor/uplot and embedded in the binary.
set -euo pipefail
VERSION=1.6.32
INTEGRITY=sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==
cd "$(dirname "$0")/.."
out=internal/ui/assets/vendor/uplot
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "uplot@$VERSION" >/dev/null)
tgz="$tmp/uplot-$VERSION.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
[ "$got" = "$INTEGRITY" ] || { echo "uplot@$VERSION: integrity $got, want $INTEGRITY" >&2; exit 1; }
tar -xzf "$tgz" -C "$tmp"
mkdir -p "$out"
cp "$tmp/package/dist/uPlot.esm.js" "$tmp/package/dist/uPlot.min.css" "$tmp/package/LICENSE" "$out/"
echo "vendored uplot@$VERSION into $out"
