"""Bad input the user can fix, and how entry points answer it: one `error:` line, exit 2."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")


class UserError(ValueError):
    """Bad input the user can fix: the message names the value and the fix, in one line.

    Entry points print it without a traceback and exit with status 2.
    """


# Kinds of bad input, one module for all: each names where it was found. Entry points treat
# them alike (UserError); tests and callers may catch one kind.


class ConfigError(UserError):
    """A config value that cannot work; the message names the key, the value and the fix."""


class OverrideError(UserError):
    """A command-line override that Hydra cannot compose: unknown option, unknown key, syntax."""


class ShapeError(UserError):
    """A layer would produce an empty feature map, or a head no vector per image."""


class DataError(UserError):
    """Data that cannot be used as configured; the message says what to do."""


class NonFiniteLossError(UserError):
    """Training diverged: the loss is NaN or infinite."""


class DashboardError(UserError):
    """The W&B workspace or report cannot be made as asked."""


def fail(message: str) -> NoReturn:
    """The one line of bad input, and exit status 2 (no traceback): every entry point's answer."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def answered(task: Callable[..., T], *args: Any) -> T:
    """Run a script's work; bad input (a UserError, wherever raised) ends in `fail`."""
    try:
        return task(*args)
    except UserError as err:
        fail(str(err))


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse for scripts whose bad command line gets one `error:` line (with the nearest
    option for a misspelt one) and exit status 2, like the Hydra entry points, not a usage
    block."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments: "):
            known = [s for a in self._actions for s in a.option_strings]
            for arg in message.split(": ", 1)[1].split():
                close = difflib.get_close_matches(arg.split("=", 1)[0], known, n=1)
                if arg.startswith("-") and close:
                    message += f" (did you mean {close[0]}?)"
                    break
        sys.stderr.write(f"error: {message}; see {self.prog} --help\n")
        sys.exit(2)
