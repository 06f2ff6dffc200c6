"""`ganinv bench scale` as a script: `python benchmarks/scale.py [--quick] [--data mnist] [--out bench]`."""
import sys

from run_all import main

if __name__ == "__main__":
    sys.exit(main(["--suites", "scale", *sys.argv[1:]]))
