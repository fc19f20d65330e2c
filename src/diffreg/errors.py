"""User-facing errors: the CLI prints these as one line, without a stack trace."""


class InputError(Exception):
    """Bad input from the user (missing file, wrong shape, malformed samplesheet, ...)."""
