"""Errors for bad user input: one line, naming the field and the value received."""


class ZooError(Exception):
    """Base of every error caused by user input; the CLI turns it into exit code 2."""


class InvalidParameterError(ZooError, ValueError):
    """A value is out of range, unknown, or inconsistent with another value."""


class InvalidTypeError(ZooError, TypeError):
    """A value has the wrong type."""


class UnknownNameError(InvalidParameterError):
    """A name (model, option, algorithm, format) that the catalog does not know."""


def suggest(name, choices):
    """Return ` Did you mean 'x'?` for the closest choice, or an empty string."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def unknown_name(kind, name, choices, hint=""):
    """Build the error for an unknown name of a kind, with a did-you-mean suggestion."""
    known = ", ".join(sorted(str(c) for c in choices))
    message = f"Unknown {kind} '{name}'.{suggest(name, choices)}"
    message += f" {hint}" if hint else f" Known: {known}."
    return UnknownNameError(message)


class JobFailed(Exception):
    """A job that ran but could not finish (every trial failed, an artifact failed verification);
    the CLI prints it as one line and exits with code 1."""
