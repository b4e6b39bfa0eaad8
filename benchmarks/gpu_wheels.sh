#!/usr/bin/env bash
# Wheels the GPU machine lacks for benchmarks/gpu_qlora.py and the end-to-end LEAP iteration on WebShop
# (benchmarks/configs/gpu_iteration.yaml), fetched into .whl/ for the device tool's `carry` (issue #10).
#
# Why these: the GPU image (device KINDS.md) has torch 2.11, transformers 5.17, accelerate, pyarrow, pandas,
# fsspec, huggingface-hub, xxhash, cloudpickle... but no bitsandbytes, trl, datasets (+ dill, multiprocess),
# gymnasium (+ farama-notifications) or WebShop's search stack (bm25s, PyStemmer, rapidfuzz). peft is carried
# too, at the version the library is tested with, so the GPU run does not depend on the image's peft.
# Versions are the ones the project's venv runs (checked against transformers 5.17 too; see BENCHMARKS.md).
# The machine cannot reach any registry and the working tree that travels is capped at 64 MiB, wheels
# included: the script prints the total. Run from the repository root:  bash benchmarks/gpu_wheels.sh
set -euo pipefail
PY=${PYTHON:-python3}
DEST=.whl  # ignored by .gitignore, so it travels only when named in carry
WHEELS=(
  bitsandbytes==0.50.2
  trl==1.16.0
  peft==0.21.2
  datasets==5.2.0
  dill==0.4.1
  multiprocess==0.70.19
  gymnasium==1.4.0
  farama-notifications==0.0.6
  bm25s==0.3.16
  PyStemmer==3.1.0
  rapidfuzz==3.14.6
)
mkdir -p "$DEST"
PLATFORMS=()
for p in manylinux_2_39_x86_64 manylinux_2_35_x86_64 manylinux_2_34_x86_64 manylinux_2_31_x86_64 \
         manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
         manylinux2014_x86_64 manylinux1_x86_64; do PLATFORMS+=(--platform "$p"); done
for w in "${WHEELS[@]}"; do
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d "$DEST" "$w"
done
# one version of each package, or the install on the device stops
dups=$(ls "$DEST"/*.whl | xargs -n1 basename | cut -d- -f1 | tr 'A-Z-' 'a-z_' | sort | uniq -d)
[ -z "$dups" ] || { echo "more than one wheel of: $dups (empty $DEST and rerun)" >&2; exit 1; }
ls -l "$DEST"
echo "wheels: $(du -cb "$DEST"/*.whl | tail -1 | cut -f1) bytes; tracked files: $(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1) bytes (limit 67108864 together)"
