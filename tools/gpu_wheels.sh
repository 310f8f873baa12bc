#!/usr/bin/env bash
# Wheels for tools/gpu_check.py on a GPU machine that cannot reach PyPI (the lent H200: Python 3.12, a CUDA
# torch, scipy, pandas, scikit-learn, pytest and tqdm already there).  Run here, in the repository root:
#
#     bash tools/gpu_wheels.sh            # -> .whl/ (ignored by git through .git/info/exclude)
#
# then on the GPU machine, with .whl carried along:
#
#     python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=$PWD:/tmp/site
#     python3 tools/gpu_check.py --copy-to "$OUT"
#
# The versions are the bench extra's as pinned here (constraints.txt, asv.conf.json's matrix); numpy 2.3.5
# because nevergrad 1.0.12 needs numpy < 2.4.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
    -d .whl \
    asv==0.6.6 asv_runner==0.3.2 json5==0.17.3 tabulate==0.10.0 Pympler==1.1 virtualenv==21.15.11 distlib==0.4.4 \
    platformdirs==4.14.9 importlib_metadata==10.2.0 \
    nevergrad==1.0.12 cma==4.5.0 bayesian-optimization==1.4.0 directsearch==1.1 numpy==2.3.5 \
    numba==0.68.0 llvmlite==0.50.0
du -sh .whl
