"""What several test modules share, so that no test module imports another (tests/ is on sys.path,
put there by tests/conftest.py):

- `paths`: the repository root.
- `tiny_mnist`: a tiny MNIST written as real IDX files.
- `fixtures`: the pytest plugin (registered by conftest's `pytest_plugins`): temp folders, data,
  MLflow stores, the processes a test starts, a small sweep.
- `procs`: processes in sessions of their own, reaped by the `procs` fixture; condition waits.
- `servers`: a real PostgreSQL cluster and `mlflow server`.
- `oracles`: the slow, obvious implementations the fast measures are checked against.
- `stores`: reading what a step wrote (CSV rows, an MLflow store's runs) and running `mlflow run`.
- `contracts`: what every training run must hold.
"""
