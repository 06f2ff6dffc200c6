"""`ganinv bench table2` as a script: `python benchmarks/table2.py [--quick] [--data mnist] [--out bench]`."""
import sys

from run_all import main

if __name__ == "__main__":
    sys.exit(main(["--suites", "table2", *sys.argv[1:]]))
