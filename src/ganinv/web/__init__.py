"""The web page (gradio): ``build_app(model, index=None)`` and ``serve(run, …)``; ``ganinv serve RUN``."""
from ganinv.web.page import build_app, serve  # noqa: F401
