"""Training: ``loop.py`` (the one training loop) and ``launch.py`` (presets and overrides → RunConfig, a post-hoc
method's frozen generator; ``plan_run`` validates, ``train_plan`` trains or resumes, ``train_run`` does both)."""
