"""User-facing errors: each one is a single line naming the thing and the fix; the CLI prints it and exits 1."""


class UserError(Exception):
    """A mistake the user can fix (bad file, bad argument, unreachable service).

    The message is one line, shown as-is after ``autocall: error:``.
    """


class ConfigError(UserError):
    """A bad configuration file or environment variable."""
