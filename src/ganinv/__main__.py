"""``python -m ganinv`` — the CLI, also the form `accelerate launch -m ganinv train …` takes."""
from .cli import main

main()
