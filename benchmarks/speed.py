"""`ganinv bench speed` as a script: `python benchmarks/speed.py [--quick] [--data mnist] [--out bench]`."""
import sys

from run_all import main

if __name__ == "__main__":
    sys.exit(main(["--suites", "speed", *sys.argv[1:]]))
