#!/bin/sh
# A sweep worker configured by the environment (see docker/compose.yaml and the README):
#   MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME, UNDERSPEC_STORAGE (no password in it),
#   UNDERSPEC_SWEEP, UNDERSPEC_SEEDS, UNDERSPEC_LAMBDAS, UNDERSPEC_CLASSES, UNDERSPEC_EPOCHS,
#   UNDERSPEC_DEVICE, UNDERSPEC_CHUNK; the database password comes from PGPASSWORD or the
#   file PGPASSFILE points to (a Docker secret), never from a parameter.
set -eu
: "${UNDERSPEC_STORAGE:?set UNDERSPEC_STORAGE, e.g. postgresql://underspec@postgres/optuna}"
python /app/entrypoints/fetch_data.py
exec python /app/entrypoints/sweep.py \
    --name="${UNDERSPEC_SWEEP:-paper}" \
    --seeds="${UNDERSPEC_SEEDS:-0,42,1337,3213,9999,5783,1023}" \
    --lambdas="${UNDERSPEC_LAMBDAS:-0.0,0.001,0.0025,0.005,0.01,0.05}" \
    --classes="${UNDERSPEC_CLASSES:-2,3,4,5,6,7,8,9,10}" \
    --epochs="${UNDERSPEC_EPOCHS:-50}" \
    --device="${UNDERSPEC_DEVICE:-cuda}" \
    --workers=1 \
    --chunk="${UNDERSPEC_CHUNK:-54}" \
    --storage="$UNDERSPEC_STORAGE" \
    --analyze=false
