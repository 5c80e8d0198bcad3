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
            import ipywidgets  # type: ignore[import-untyped]  # noqa: F401
            from tqdm.notebook import tqdm as widget_bar

            bar: Progress = widget_bar(total=total, desc=description, unit="req")
            return bar
        except ImportError:
            pass
    from tqdm.std import tqdm as text_bar

    text: Progress = text_bar(total=total, desc=description, unit="req", file=sys.stderr, dynamic_ncols=True)
    return text
