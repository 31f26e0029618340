"""python -m benchmarks [--quick] [--threads 1 2] [--filter NAME] [--out DIR]

Runs every case of benchmarks/cases/*.py, writes results.json, results.md and
PNG charts to --out, and prints the table. --quick runs the CI subset and fails
if qtorch is more than 2x slower than the best native engine on any case (a
regression guard, not the target).
"""
import argparse
import importlib
import os
import pkgutil
import sys

import torch

import benchmarks.cases
import qtorch  # noqa: F401  (loads the ops)
from benchmarks import report
from benchmarks.harness import quiet_native, time_case

REGRESSION_LIMIT = 0.5  # native/qtorch below this fails --quick


def all_cases(quick: bool):
    for info in pkgutil.iter_modules(benchmarks.cases.__path__):
        module = importlib.import_module(f"benchmarks.cases.{info.name}")
        with quiet_native():  # cases build native quantized inputs
            cases = module.cases(quick)
        yield from (case for case in cases if case.quick or not quick)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI subset; fail on a >2x regression")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--filter", default="", help="only cases whose group/name contains this")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/out")
    args = parser.parse_args(argv)
    repeats = args.repeats or (7 if args.quick else 15)
    sample_s = 0.005 if args.quick else 0.02
    os.makedirs(args.out, exist_ok=True)

    results = []
    for case in all_cases(args.quick):
        if args.filter and args.filter not in f"{case.group}/{case.name}":
            continue
        for threads in args.threads:
            result = time_case(case, threads, repeats, sample_s)
            results.append(result)
            best = result.best_native
            ratio = f"{result.ratio(best):.2f}" if best else "-"
            others = "".join(f"  {n}/qtorch {result.ratio(n):.2f}" for n in report.peers(result))
            print(f"{case.group:12s} {case.name:48s} {threads}t  qtorch {result.timings['qtorch'].median_us:9.1f} us  "
                  f"native/qtorch {ratio}{others}", flush=True)
    torch.set_num_threads(max(args.threads))

    table = report.markdown(results)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(f"Machine: {report.machine()}\n\n{table}\n")
    report.write_json(results, os.path.join(args.out, "results.json"))
    report.write_charts(results, args.out)
    print()
    print(f"Machine: {report.machine()}")
    print(table)

    if args.quick:
        slow = [r for r in results if r.best_native and r.ratio(r.best_native) < REGRESSION_LIMIT]
        for r in slow:
            print(f"REGRESSION: {r.group}/{r.name} at {r.threads} threads: qtorch is "
                  f"{1 / r.ratio(r.best_native):.2f}x slower than {r.best_native}", file=sys.stderr)
        return 1 if slow else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
