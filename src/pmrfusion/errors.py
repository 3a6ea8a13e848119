"""User-facing error type: the CLI prints its message on one line and exits with code 2."""

from collections import Counter
from collections.abc import Iterable


class PMRFusionError(ValueError):
    """Bad input (unknown name, missing file, malformed data, wrong shapes)."""


def first_line(e: BaseException, with_type: bool = False) -> str:
    """The first non-empty line of an exception's message (library errors can span many lines),
    prefixed with `Type: ` when `with_type`; the type name alone when the message is empty."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    if not lines:
        return type(e).__name__
    return f"{type(e).__name__}: {lines[0]}" if with_type else lines[0]


def check_distinct(values: Iterable[object], what: str) -> None:
    """One error line when a list of names or seeds (`--what`) holds a value more than once."""
    twice = sorted(str(v) for v, n in Counter(values).items() if n > 1)
    if twice:
        raise PMRFusionError(f"--{what} lists {', '.join(twice)} more than once")
