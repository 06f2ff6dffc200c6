"""Run every benchmark suite into one folder: ``python benchmarks/run_all.py --out bench [--quick] [--data mnist]``.

Each suite is ``ganinv bench SUITE`` (ganinv.bench); this script only runs them in order and lists the reports."""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from ganinv.experiments.bench import SUITES, run_suite


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench"))
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--suites", default=",".join(SUITES), help="comma-separated subset of " + ", ".join(SUITES))
    args = parser.parse_args(argv)
    for suite in [s for s in args.suites.split(",") if s]:
        command = (f"ganinv bench {suite} --out {shlex.quote(str(args.out))} --seed {args.seed}"
                   + ("" if suite in ("speed", "scale") else f" --data {shlex.quote(args.data)}")
                   + (" --quick" if args.quick else ""))
        start = time.perf_counter()
        result = run_suite(suite, data=args.data, out=args.out, quick=args.quick, seed=args.seed, command=command,
                           log=lambda m: print(m, file=sys.stderr))
        print(f"{suite}: {result['report']} ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
