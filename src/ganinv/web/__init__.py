"""The web page (gradio): ``build_app(model, index=None)`` and ``serve(run, …)``; ``ganinv serve RUN``.

    handlers.py   the logic behind the widgets, plain functions over tensors (no gradio)
    widgets.py    the page's own gradio components and ResultFiles
    page.py       build_app (one function per tab) and serve

``build_app`` and ``serve`` are loaded from page.py on first use, so ``import ganinv.web.handlers`` does not import
gradio (seconds of start-up and hundreds of modules).
"""
import os

# Before gradio is imported anywhere: no analytics, no version check, no hub telemetry.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

__all__ = ["build_app", "serve"]


def __getattr__(name: str):
    if name in __all__:
        from ganinv.core.extras import require

        require("gradio", "web", "ganinv serve (the web page)")  # one line naming the extra, not gradio's ImportError
        from ganinv.web import page  # deferred: imports gradio

        return getattr(page, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
