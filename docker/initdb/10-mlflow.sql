-- The second database, for MLflow's backend store (the first, optuna, is POSTGRES_DB).
CREATE DATABASE mlflow OWNER underspec;
