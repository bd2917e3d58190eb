"""A researcher's own package, outside poolbench: a pool, a head, a data source, a schedule and
a test-time augmentation, and their configs in conf/ (added with
hydra.searchpath=[pkg://userpkg.conf] or [file://…/userpkg/conf])."""
