#!/bin/sh
# A sweep worker configured by the environment (see docker/compose.yaml and the README): every
# option of `sweep` as UNDERSPEC_<OPTION> (UNDERSPEC_SEEDS, UNDERSPEC_EPOCHS, ...; the sweep's
# name is UNDERSPEC_SWEEP), derived from its config by entrypoints/from_env.py; the database
# password comes from PGPASSWORD or a pgpass file (PGPASSFILE), never from a parameter.
set -eu
: "${UNDERSPEC_STORAGE:?set UNDERSPEC_STORAGE, e.g. postgresql://underspec@postgres/optuna}"
here=$(cd "$(dirname "$0")/.." && pwd)
python "$here/entrypoints/fetch_data.py"
exec python "$here/entrypoints/from_env.py" sweep
