"""poolbench's configs, installed as the package poolbench.conf (pyproject.toml maps it here)."""
