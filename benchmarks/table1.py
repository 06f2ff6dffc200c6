"""`ganinv bench table1` as a script: `python benchmarks/table1.py [--quick] [--data mnist] [--out bench]`."""
import sys

from run_all import main

if __name__ == "__main__":
    sys.exit(main(["--suites", "table1", *sys.argv[1:]]))
