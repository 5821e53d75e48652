"""Training: MNIST on disk, the model, the fused engine, the plain reference loop, parallel
workers and the trajectory artifacts. torch and numpy; no MLflow, no Optuna."""
