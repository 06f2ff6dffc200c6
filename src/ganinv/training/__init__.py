"""Training: ``loop.py`` (the one training loop) and ``launch.py`` (presets and overrides → RunConfig, a post-hoc
method's frozen generator, and ``train_run``: validate, then train or resume)."""
