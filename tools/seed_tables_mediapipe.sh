#!/usr/bin/env bash
# The seed's tables with the pretrained encoder (docs/RESULTS.md, "The seed's tables with
# this encoder"): every row of configs/seed/ that trains on synthetic hands, on one set of 5,040
# training and 1,600 evaluation hands, the frozen MediaPipe encoder's features stored once.
# About 35 minutes on 2 CPU cores: the set 4 min, MediaPipe's labels of its training images
# 9 min (the detector and bone rows need them), then 2.5 min per row.
#
#   tools/seed_tables_mediapipe.sh [OUT=out/ablate-seed-mp] [key=value ...]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out/ablate-seed-mp}"
shift || true
m=.venv/bin/monohand
data=out/data/v2b
[ -f "$data/synth_config.json" ] || $m synth "$data" --num 6640 --eval-fraction 0.241 --seed 11 \
  --size 256 --fill 0.4,0.7 --style v2
$m ablate configs/seed/{gt2d,gt2d_3d,gt2d_3dnorm,detector_noconf,detector_conf,bone_ws,bone_ws_conf,bone_ss,bone_ss_conf}.yaml \
  --out "$out" data.root="$data" data.size=224 data.crop=mediapipe data.augment=true \
  data.cache_views=1 data.cache_dir=out/cache model.backbone=mediapipe model.pretrained=true \
  model.freeze_encoder=true model.head_hidden=512 model.depth_per_focal=1.04e-3 steps=2000 \
  batch=128 "$@"
