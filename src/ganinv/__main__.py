"""``python -m ganinv`` — the CLI, also the form `accelerate launch -m ganinv train …` takes."""
from ganinv.cli import main

main()
