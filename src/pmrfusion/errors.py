"""User-facing error type: the CLI prints its message on one line and exits with code 2."""


class PMRFusionError(ValueError):
    """Bad input (unknown name, missing file, malformed data, wrong shapes)."""
