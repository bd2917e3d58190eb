"""A researcher's own package, outside poolbench: a pool and a head, and their configs in
conf/ (added with hydra.searchpath=[pkg://userpkg.conf] or [file://…/userpkg/conf])."""
