#!/usr/bin/env bash
# Maintenance: run a fixed set of commands into OUT/ so two code versions can be compared with
# `diff -r` on their records (issue 18: the one-pipeline refactor must leave records byte-identical).
#   PYTHONPATH=/path/to/other/src scripts/pipeline_parity.sh OUT   # another checkout's code
#   scripts/pipeline_parity.sh OUT                                 # this checkout
set -euo pipefail
out=${1:?usage: pipeline_parity.sh OUT}
py=${PY:-.venv/bin/python}
run() { "$py" -m pmrfusion "$@" --quiet > /dev/null; }
mkdir -p "$out"
run bench --out "$out/bench"                                                      # make run
run suite --datasets handwritten,cub --methods concat,sg-concat,rg-srht,qmf,tmc --seeds 2 --jobs 1 --out "$out/suite"
"$py" -m pmrfusion bench --dataset avmnist --methods concat,sg-concat --epochs 1 --seeds 1 --regime end-to-end --quiet --out "$out/avmnist-e2e" > /dev/null
"$py" -m pmrfusion bench --dataset avmnist --methods concat,sg-concat --epochs 1 --seeds 1 --regime frozen --quiet --out "$out/avmnist-frozen" > /dev/null
"$py" -m pmrfusion retrieval --dataset wikipedia --seeds 2 --out "$out/retrieval" > /dev/null
"$py" -m pmrfusion rcml --datasets handwritten --methods tmc,concat --runs 1 --epochs 50 --out "$out/rcml" > /dev/null
run bench --dataset mosi --out "$out/mosi"
# timings differ run to run: keep only records
find "$out" -name '*.log' -delete
