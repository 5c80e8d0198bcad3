"""Progress bars: a widget in Jupyter when ipywidgets is there, text otherwise, off when asked.

``progress=None`` (the default) shows a bar for pulls of more than a few requests when someone is
watching: a notebook, or a terminal on stderr. Never a warning about missing widgets.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

__all__ = ["Progress", "progress_bar"]

_SHOW_FROM = 5  # requests: a shorter pull is over before a bar helps


class Progress(Protocol):
    def update(self, n: int = 1) -> Any: ...
    def close(self) -> None: ...


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class _WidgetBar:
    """tqdm's widget bar, displayed with a display id so that closing it rewrites its output: a saved
    notebook keeps a widget's text as it was first displayed (0%), not as the pull ended."""

    def __init__(self, total: int, description: str) -> None:
        import ipywidgets  # type: ignore[import-untyped]  # noqa: F401
        from IPython.display import display
        from tqdm.notebook import tqdm as widget_bar

        self._bar = widget_bar(total=total, desc=description, unit="req", display=False)
        self._handle = display(self._bar.container, display_id=True)  # type: ignore[no-untyped-call]

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()
        if self._handle is not None:
            self._handle.update(self._bar.container)


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    ipython = getattr(shell, "get_ipython", lambda: None)() if shell else None
    return ipython is not None and type(ipython).__name__ == "ZMQInteractiveShell"


def progress_bar(total: int, description: str, enabled: bool | None) -> Progress:
    notebook = _in_notebook()
    if enabled is False or (enabled is None and (total < _SHOW_FROM or not (notebook or sys.stderr.isatty()))):
        return _Silent()
    if notebook:
        try:
            return _WidgetBar(total, description)
        except ImportError:
            pass
    from tqdm.std import tqdm as text_bar

    text: Progress = text_bar(total=total, desc=description, unit="req", file=sys.stderr, dynamic_ncols=True)
    return text
