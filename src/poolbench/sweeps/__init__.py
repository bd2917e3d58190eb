"""Many jobs: which GPU each uses, one run folder per DDP job, and Hydra's runtime read in one
place."""
