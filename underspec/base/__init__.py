"""What every layer may use: file locks and process liveness, interrupt handling, secret
redaction, progress lines. Standard library and tqdm only; imports nothing of underspec."""
