"""`ganinv bench dlsgan` as a script: `python benchmarks/dlsgan.py [--quick] [--data mnist] [--out bench]`."""
import sys

from run_all import main

if __name__ == "__main__":
    sys.exit(main(["--suites", "dlsgan", *sys.argv[1:]]))
