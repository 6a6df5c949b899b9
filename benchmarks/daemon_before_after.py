"""The daemon's payment path now against the tree before the gateway layout (issue 9), same run.

Issue 9 rebuilt the gateway (one payment session, typed hand-offs, one state-policy table) with
"behaviour unchanged, ``benchmarks/daemon.py`` within 10% of before". This runs
``benchmarks/daemon.py`` of two trees, alternately, on the same machine in one run:

* ``before``: the commit :data:`BASELINE_REV` (the last one before the layout), unpacked with
  ``git archive`` into a temporary folder (its own code, this checkout's virtual environment);
* ``after``: this checkout.

Each run prints its own ``daemon_payment_median`` and ``kernel_payment_median``; this prints the
median of each over the rounds, and two ratios: the daemon's payment time after/before (the
target is <= 1.10) and the daemon-over-kernel ratio after/before (which cancels the machine's
speed of the moment). Without git history (a shallow or exported tree) it says so and exits 0
after printing the ``after`` figures only. Run:
``.venv/bin/python benchmarks/daemon_before_after.py [--rounds 5] [--n 100]`` (five rounds: one
load spike on a shared machine then moves one run of five, not the median).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: "Review: one retry queue ..." — main just before the issue-9 layout work.
BASELINE_REV = "fb84186"
_FIGURE = re.compile(r"^(daemon_payment_median|kernel_payment_median): ([0-9.]+) ms$", re.M)


def _export(rev: str, into: Path) -> bool:
    """Unpack ``rev`` of this repository into ``into``; False when the history lacks it."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        return False
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return True


def _run(tree: Path, n: int) -> dict[str, float]:
    """One ``benchmarks/daemon.py`` run of ``tree`` with a single round; its two medians."""
    done = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / "daemon.py"), "--n", str(n), "--rounds", "1"],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return {name: float(value) for name, value in _FIGURE.findall(done.stdout)}


def main() -> None:
    """Alternate the two trees, then print the medians and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="runs of each tree, alternated")
    parser.add_argument("--n", type=int, default=100, help="payments per run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="posgw-before-") as tmp:
        before_tree = Path(tmp)
        have_before = _export(BASELINE_REV, before_tree)
        if not have_before:
            print(f"# {BASELINE_REV} is not in this clone's history: 'after' figures only")
        runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
        for _ in range(args.rounds):
            if have_before:
                runs["before"].append(_run(before_tree, args.n))
            runs["after"].append(_run(ROOT, args.n))
    medians: dict[str, dict[str, float]] = {}
    for side, results in runs.items():
        if not results:
            continue
        medians[side] = {
            name: statistics.median(result[name] for result in results)
            for name in ("daemon_payment_median", "kernel_payment_median")
        }
        for name, value in medians[side].items():
            print(f"{name.removesuffix('_median')}_{side}_median: {value:.3f} ms")
    if "before" in medians:
        before, after = medians["before"], medians["after"]
        ratio = after["daemon_payment_median"] / before["daemon_payment_median"]
        print(f"daemon_payment_after_over_before: {ratio:.2f} x")
        normalised = (after["daemon_payment_median"] / after["kernel_payment_median"]) / (
            before["daemon_payment_median"] / before["kernel_payment_median"]
        )
        print(f"daemon_over_kernel_after_over_before: {normalised:.2f} x")


if __name__ == "__main__":
    main()
