#!/usr/bin/env bash
# The real photos the photo-set experiments train on (docs/RESULTS.md, "Real photos in training, and v3 renders"): "American Sign
# Language Letters" v1 by David Lee, exported by Roboflow, Public Domain (its README.md says
# so), 1,728 photos of one hand from 720 originals (the training split holds 504 originals x 3
# augmented copies). They live in a public repository at a pinned commit; this script copies
# them out (git needs the network once) and checks that they are the files measured here,
# then makes the training split a photo set. Never the evaluation sets.
#
#   tools/get_asl_photos.sh [DEST=out/sources]     # then: out/data/asl_photos
set -euo pipefail
dest="${1:-out/sources}"
repo=https://github.com/thesoorajsingh/Project-S
commit=2f4c8d5010b27d49ac162a586efd4b9a6bdf90c9
sha=e3fe150b81dfe86fc685df0a474223c2bfd3340c28e9c09c32404f1b72ebfc67
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git -C "$work" init -q && git -C "$work" remote add origin "$repo"
git -C "$work" fetch -q --depth 1 origin "$commit"
mkdir -p "$dest"
git -C "$work" archive "$commit" data/ASL-data | tar -x -C "$dest"
got=$(cd "$dest/data/ASL-data" && find train -name "*.jpg" | LC_ALL=C sort | xargs sha256sum \
      | sha256sum | cut -c1-64)
[ "$got" = "$sha" ] || { echo "the photos differ from the ones measured ($got)" >&2; exit 1; }
monohand import-photos "$dest/data/ASL-data/train" out/data/asl_photos --licence \
  "American Sign Language Letters v1 (David Lee, via Roboflow), Public Domain; from $repo@${commit:0:7} data/ASL-data/train"
