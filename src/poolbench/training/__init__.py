"""Training one run: the LightningModule, the fast path, callbacks, loggers, the schedule,
resuming, and what a job records (results.json)."""
