#!/usr/bin/env bash
# coldstart_arm64.sh - the cold-start rows of issue #18 inside the emulated aarch64 userland (a Pi 4 under qemu-user).
#
# Usage (as root, after ../shared/tools/arm64-smoke.sh has built its cached root fs once):
#   benchmarks/coldstart_arm64.sh [ROUNDS] [BEFORE_GIT_REF]
#
# Builds the edgeq wheel of this working tree (and of BEFORE_GIT_REF, e.g. a commit before a change), installs each
# without dependencies into a copy of the root fs's /opt/venv (ai-edge-litert + numpy, as arm64-smoke.sh made it),
# then runs benchmarks/_coldstart_arm64_child.py in the emulated userland: `import edgeq.runtime` + backend against
# `import ai_edge_litert.interpreter, numpy`, and `edgeq run MODEL --random --json` against a 5-line LiteRT script,
# fresh processes taking turns, medians of ROUNDS (default 5), with the bare script twice (A/A, the noise floor).
# CPU is the user + system time of each qemu process: qemu-user is 10-40x slower than the host, so only ratios mean
# anything. Prints the child's JSON on stdout. Environment: PYTHON (host python with pip; default .venv/bin/python),
# ARM64_SMOKE (default ../shared/tools/arm64-smoke.sh), ARM64_SMOKE_CACHE, PI_PROFILE (pi4), WORK (a new /tmp folder).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${1:-5}
BEFORE=${2:-}
PY=${PYTHON:-$REPO/.venv/bin/python}
SMOKE=${ARM64_SMOKE:-$REPO/../shared/tools/arm64-smoke.sh}
ROOTFS=${ARM64_SMOKE_CACHE:-/var/cache/arm64-smoke}/rootfs-bookworm-arm64
WORK=${WORK:-$(mktemp -d /tmp/edgeq-coldstart-arm64.XXXXXX)}
MODEL=$REPO/samples/fashion_mnist/model_int8.tflite
mkdir -p "$WORK"

[[ $EUID -eq 0 ]] || { echo "coldstart_arm64.sh: must run as root (arm64-smoke.sh needs chroot)" >&2; exit 2; }
[[ -d $ROOTFS/opt/venv ]] || { echo "coldstart_arm64.sh: no cached root fs at $ROOTFS; run $SMOKE $MODEL once" >&2; exit 2; }

wheel() {  # wheel GIT_REF|"" DEST: the wheel of a commit, or of the working tree
  local src=$WORK/src-$2
  rm -rf "$src" && mkdir -p "$src" "$WORK/$2"
  if [[ -n $1 ]]; then git -C "$REPO" archive "$1" | tar -x -C "$src"
  else tar -C "$REPO" --exclude=.git --exclude=.venv --exclude=build --exclude='*.egg-info' --exclude=__pycache__ -cf - . | tar -C "$src" -xf -; fi
  "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/$2" "$src" >&2
  rm -rf "$WORK/venv-$2" && cp -a "$ROOTFS/opt/venv" "$WORK/venv-$2"
  echo "/out/venv-$2/bin/python -m pip install -q --no-deps --no-index /out/$2/$(basename "$(ls "$WORK/$2"/edgeq-*.whl)")"
}

{ echo "set -e"; wheel "" new; [[ -n $BEFORE ]] && wheel "$BEFORE" before
  echo "python3 /out/child.py $ROUNDS /job/model.tflite /out/venv-new ${BEFORE:+/out/venv-before}"; } >"$WORK/inner.sh"
cp "$REPO/benchmarks/_coldstart_arm64_child.py" "$WORK/child.py"
echo "coldstart_arm64.sh: work folder $WORK, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
ARM64_SMOKE_OUT=$WORK bash "$SMOKE" "$MODEL" -- bash /out/inner.sh
