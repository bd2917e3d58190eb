"""poolbench: what max vs. average pooling, or flatten vs. global pooling, do to a ConvNet."""

__version__ = "0.1.0"

import time as _time

# When poolbench was first imported: the start of a run, for the start-up time it reports.
IMPORTED_AT = _time.time()

from poolbench.sweeps.distributed import register_resolvers as _register_resolvers  # noqa: E402

_register_resolvers()  # conf/hydra/ names run folders with them, in every entry point
