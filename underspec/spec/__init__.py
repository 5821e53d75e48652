"""A run's specification: the settings and grid axes (defined once), the parsers of their text
forms, the step configs and the MLproject generator. No torch, MLflow or Optuna."""
