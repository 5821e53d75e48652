"""Training: MNIST on disk, the model, the fused engine (with its pixel layout and the private
torch calls it makes, in torch_shim), the plain reference loop, parallel workers and the
trajectory artifacts. torch and numpy; no MLflow, no Optuna."""
