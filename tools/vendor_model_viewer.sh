#!/usr/bin/env bash
# Fetch @google/model-viewer from the npm registry into the web app's static folder (offline
# use at run time) and check it is the reviewed file.
set -euo pipefail
version=4.4.0
sha=18b2e711035aa4705ee281530a55dc2338ff05eed3d70ae16d54105282a75ed5
dest="$(dirname "$0")/../src/monohand/serve/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "@google/model-viewer@$version" >/dev/null && tar xzf ./*.tgz)
echo "$sha  $work/package/dist/model-viewer.min.js" | sha256sum -c -
cp "$work/package/dist/model-viewer.min.js" "$dest/model-viewer-$version.min.js"
cp "$work/package/LICENSE" "$dest/model-viewer-LICENSE.txt"
echo "vendored model-viewer $version into $dest"
