#!/usr/bin/env bash
# The package as users get it: build the wheel, install it into a fresh virtual environment outside the
# source tree (the pinned dependencies are taken from .venv rather than downloaded again) and run the
# commands a new user starts with from an empty folder.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

.venv/bin/python -m pip wheel -q --no-deps -w "$WORK/dist" .
python3 -m venv "$WORK/venv"
DEPS=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# A path line in a .pth file adds that folder without running its own .pth files, so the editable
# install of the checkout in .venv does not leak into this environment.
echo "$DEPS" > "$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ci_pinned_deps.pth"
"$WORK/venv/bin/pip" install -q --no-deps --no-index "$WORK"/dist/hrnet-*.whl

mkdir "$WORK/user" && cd "$WORK/user"
HRNET="$WORK/venv/bin/hrnet"
"$WORK/venv/bin/python" - "$REPO" <<'PY'
import sys
from pathlib import Path

import hrnet

location = Path(hrnet.__file__).resolve()
assert not location.is_relative_to(Path(sys.argv[1]).resolve()), f"hrnet imported from the checkout: {location}"
print(f"hrnet {hrnet.__version__} from {location.parent}")
PY
"$HRNET" configs list pose/synthetic
"$HRNET" quickstart --help > /dev/null
"$HRNET" ablate --help > /dev/null
"$HRNET" data synth --task pose --out data --num-train 8 --num-val 4 --image-size 128 96
"$HRNET" train pose/synthetic/quickstart data.root=data output_dir=run train.epochs=1 train.batch_size=4 \
    train.workers=0 eval.batch_size=4 model.overrides.width=8 --threads 2
test -f run/checkpoints/last.pt
echo "wheel check passed: configs by name, quickstart/ablate help and a one-epoch training from $WORK/user"
