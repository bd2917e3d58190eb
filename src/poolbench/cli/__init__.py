"""The entry points (train, eval, shapes) and the command line made into a config."""
