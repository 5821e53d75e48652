#!/bin/bash
# A sweep on a Slurm cluster: MNIST fetched once here (compute nodes often have no internet),
# an array of N sweep workers, and the analysis as a job that runs when every task succeeded.
#   export MLFLOW_TRACKING_URI=http://tracking-host:5000 UNDERSPEC_STORAGE=postgresql://underspec@db-host/optuna
#   export UNDERSPEC_DATA_DIR=/shared/mnist UNDERSPEC_SWEEP=paper    # + any UNDERSPEC_<OPTION>
#   slurm/submit.sh 4 [extra sbatch options for the workers, e.g. --gres=gpu:1 --partition=gpu]
# Prints the two job ids. Run from the repository root, with its .venv (or UNDERSPEC_PYTHON).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:?usage: slurm/submit.sh N_WORKERS [sbatch options...]}"
shift
case "$N" in
    ''|*[!0-9]*|0) echo "submit.sh: invalid N_WORKERS=$N: expected a positive integer" >&2; exit 2 ;;
esac
PY="${UNDERSPEC_PYTHON:-.venv/bin/python}"
"$PY" entrypoints/fetch_data.py >&2
sweep=$(sbatch --parsable --array="0-$((N - 1))" "$@" slurm/sweep.sbatch)
sweep="${sweep%%;*}"
analysis=$(sbatch --parsable --dependency="afterok:$sweep" slurm/analyze.sbatch)
echo "sweep array job $sweep ($N workers); analysis job ${analysis%%;*} (after every task succeeded)"
