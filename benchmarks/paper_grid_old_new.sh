#!/usr/bin/env bash
# Training the paper grid (`-P analyze=false`), old commit against new, side by side on this
# machine: each commit in its own worktree with fresh stores, run one after the other (old, new,
# then again if ROUNDS=2), the same venv. Prints wall seconds per run.
# Usage: benchmarks/paper_grid_old_new.sh OLD_REV [NEW_REV] [ROUNDS]
set -euo pipefail
OLD=${1:?old revision}; NEW=${2:-HEAD}; ROUNDS=${3:-1}
REPO=$(cd "$(dirname "$0")/.." && pwd)
VENV_BIN="$REPO/.venv/bin"
WORK=$(mktemp -d /tmp/underspec-oldnew-XXXX)
trap 'git -C "$REPO" worktree remove --force "$WORK/old" 2>/dev/null; git -C "$REPO" worktree remove --force "$WORK/new" 2>/dev/null; rm -rf "$WORK"' EXIT
git -C "$REPO" worktree add -q --detach "$WORK/old" "$OLD"
git -C "$REPO" worktree add -q --detach "$WORK/new" "$NEW"
for round in $(seq "$ROUNDS"); do
  for which in old new; do
    dir="$WORK/$which"; store="$WORK/store-$which-$round"; mkdir -p "$store"
    start=$(date +%s.%N)
    # PYTHONPATH: the worker processes import this worktree's underspec, not the editable install's.
    (cd "$store" && PATH="$VENV_BIN:$PATH" PYTHONPATH="$dir" UNDERSPEC_DATA_DIR="$REPO/data" \
      MLFLOW_TRACKING_URI="sqlite:///$store/mlflow.db" mlflow run "$dir" -e sweep --env-manager local \
      --experiment-name underspec -P analyze=false -P "storage=sqlite:///$store/optuna.db" > "$store/log" 2>&1)
    end=$(date +%s.%N)
    runs=$("$VENV_BIN/python" -c "from mlflow import MlflowClient as C; c=C('sqlite:///$store/mlflow.db'); e=c.get_experiment_by_name('underspec').experiment_id; print(len(c.search_runs([e], \"tags.\`underspec.role\` = 'train' and attributes.status = 'FINISHED'\", max_results=1000)))")
    printf '%s round %s (%s): %.1f s wall, %s FINISHED training runs\n' "$which" "$round" \
      "$(git -C "$dir" rev-parse --short HEAD)" "$(echo "$end - $start" | bc)" "$runs"
  done
done
