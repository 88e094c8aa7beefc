"""pseval's messages and progress bars: messages go through `logging.getLogger("pseval")` (child loggers
`pseval.<module>`), which a notebook silences with `logging.getLogger("pseval").setLevel(logging.WARNING)`; the command
line prints them to stderr, plainly, so results on stdout stay clean. Progress bars draw only on a terminal."""

from __future__ import annotations

import logging
import sys
from typing import Any

from pseval.tables import fit_text

ROOT = "pseval"
# A library adds no output of its own: without a handler, INFO messages go nowhere (logging's convention).
logging.getLogger(ROOT).addHandler(logging.NullHandler())


def get_logger(name: str) -> logging.Logger:
    """The logger `pseval.<name>` (a module's messages)."""
    return logging.getLogger(f"{ROOT}.{name.removeprefix(ROOT + '.')}")


class _StderrHandler(logging.Handler):
    """Each message as plain lines on the current sys.stderr (looked up per message: a test runner swaps it): wrapped
    to the console width on a terminal, one line per message in a log file (where grep finds it whole)."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write the message and a newline."""
        try:
            text = self.format(record)
            sys.stderr.write((fit_text(text) if is_terminal(sys.stderr) else text) + "\n")
            sys.stderr.flush()
        except Exception:  # logging's rule: a failed message never breaks the run
            self.handleError(record)


def install_cli_handler(level: int = logging.INFO) -> logging.Handler:
    """The command line's output of messages: INFO and up to stderr, plainly; installed once."""
    root = logging.getLogger(ROOT)
    for h in root.handlers:
        if isinstance(h, _StderrHandler):
            return h
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def is_terminal(stream: Any = None) -> bool:
    """Whether `stream` (default: stderr, where tqdm draws) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (ValueError, OSError):  # a closed or detached stream
        return False


def bar_disabled(progress: bool) -> bool:
    """tqdm's `disable=`: off when not asked for, or when stderr is not a terminal (a log file would fill with
    carriage returns)."""
    return not progress or not is_terminal()
