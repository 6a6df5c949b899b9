"""This tree's daemon against an earlier commit's, side by side in one run: CPU per sale.

A change worth 0.05-0.1 ms per sale is smaller than this machine's drift between two runs of
``benchmarks/lanes.py`` (0.1-0.4 ms), so it is measured here with both daemons up at once. The
earlier commit (``--base``, by default :data:`BASELINE`, the tree before session 13's changes:
a chain of two journal steps written as one ``UPDATE``) is checked out with
``git worktree`` in a temporary directory; each tree runs its own
``benchmarks/lanes.py --daemon-child`` (16 ``sim://`` lanes, virtual cards on the loop,
``synchronous=FULL``) on a journal of its own, with the bench till registered by its own code;
one acquirer host on loopback in this process serves both. Windows of 16 tills paying back to
back (one request per sale) alternate between the two (the base first in odd rounds), so a
machine changing speed weighs on both. Each window's CPU (``/proc``, utime + stime) is counted
until its offline sales are forwarded, over the payments the tills saw end.

Printed: each tree's median over the rounds, the difference and ratio of the medians, the
median of the per-round ratios, each tree's till-observed p99 and peak RSS.

Run: ``.venv/bin/python benchmarks/versus.py [--base REV] [--rounds 8] [--seconds 4]``
(about 2.5 min). A base commit the clone does not hold is an error, not a skip.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from benchmarks.event_loop import DaemonSide, run_sides  # noqa: E402 - after the sys.path line

#: The tree before session 13's changes (session 12's last commit). Earlier bases: session 12's,
#: ``2ecc36b6c4e8a896cdbb6aed94d1292d71d7ead4``; session 11's, the tree before its journal
#: changes, ``81dd7d7f3e89a8e1ec351d702ad50f6bb7e72c64``.
BASELINE = "7c3356d80d027281fbc4f5db3d7b501a3133164e"
SIDES = ("base", "this")
_REGISTER = (
    "import json, sys; from pathlib import Path; "
    "from benchmarks.lanes_support import bench_till; "
    "print(json.dumps(bench_till(Path(sys.argv[1]))))"
)


class _Daemon(DaemonSide):
    """One daemon child of ``tree``'s own ``benchmarks/lanes.py`` on a journal of its own."""

    def __init__(self, tree: Path, acquirer_url: str) -> None:
        super().__init__("posgw-bench-versus-", acquirer_url)
        self.tree = tree
        self.env = {**os.environ, "PYTHONPATH": str(tree), "POSGW_BENCH_SIM_CARDS": "inline"}

    async def start(self) -> None:
        register = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _REGISTER, str(self.workdir / "journal.db"),
            cwd=self.tree, env=self.env, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await register.communicate()
        if register.returncode != 0:
            raise SystemExit(f"versus: registering the till in {self.tree} failed")
        self.headers = json.loads(out.decode().strip().splitlines()[-1])
        await self._started(await asyncio.create_subprocess_exec(
            sys.executable, str(self.tree / "benchmarks" / "lanes.py"), "--daemon-child",
            str(self.workdir), self.url, cwd=self.tree, env=self.env,
            stdout=asyncio.subprocess.PIPE,
        ))  # fmt: skip


def _checkout(revision: str, where: Path) -> str:
    """``revision`` checked out at ``where`` (a detached worktree); its full commit id."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--verify", f"{revision}^{{commit}}"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except subprocess.CalledProcessError as exc:
        message = f"versus: no commit {revision!r} in this clone: {exc.stderr.strip()}"
        raise SystemExit(message) from None
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(where), commit],
                   cwd=ROOT, check=True)  # fmt: skip
    return commit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=BASELINE, help="the earlier commit")
    parser.add_argument("--rounds", type=int, default=8, help="windows on each side")
    parser.add_argument("--seconds", type=float, default=4.0, help="each window's load")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    parent = Path(tempfile.mkdtemp(prefix="posgw-bench-base-"))
    checkout = parent / "tree"
    try:
        commit = _checkout(args.base, checkout)
        trees = {"base": checkout, "this": ROOT}
        found = asyncio.run(
            run_sides(lambda side, url: _Daemon(trees[side], url), SIDES, args.rounds, args.seconds)
        )
    finally:
        if checkout.exists():
            subprocess.run(["git", "worktree", "remove", "--force", str(checkout)], cwd=ROOT,
                           check=False)  # fmt: skip
        shutil.rmtree(parent, ignore_errors=True)
    base, this = (statistics.median(found.cpu[side]) for side in SIDES)
    ratios = [t / b for b, t in zip(found.cpu["base"], found.cpu["this"], strict=True)]
    print(f"versus_base_commit: {commit[:12]} commit")
    print(f"versus_rounds: {args.rounds} rounds")
    print(f"daemon_cpu_per_payment_base: {base * 1e3:.3f} ms")
    print(f"daemon_cpu_per_payment_this: {this * 1e3:.3f} ms")
    print(f"this_minus_base_cpu: {(this - base) * 1e3:.3f} ms")
    print(f"this_over_base_cpu: {this / base:.3f} x")
    print(f"this_over_base_cpu_per_round_median: {statistics.median(ratios):.3f} x")
    found.print_sides()


if __name__ == "__main__":
    main()
