"""Start-up of the command line (run by hand: `.venv/bin/python bench/startup.py`).

Runs `python -m bot --help` (what `vfbot --help` runs) N times in fresh interpreters and prints
the fastest and the median wall time, and which heavy packages the parser alone imported.
`--source DIR` runs another checkout's `bot` package (for the "before" figures of
docs/benchmarks.md); the interpreter and its installed packages stay this checkout's venv.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("sqlalchemy", "alembic", "slack_bolt", "aiohttp", "apscheduler", "prometheus_client")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--source", type=Path, default=Path(__file__).parents[1])
    args = parser.parse_args()
    source = str(args.source.resolve())
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        # `-m` puts the working directory first on sys.path: the checkout under test wins.
        subprocess.run(
            [sys.executable, "-m", "bot", "--help"],
            cwd=source,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        times.append((time.perf_counter() - started) * 1000)
    probe = "import sys, bot.cli; bot.cli.build_parser(); print(sorted(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=source, check=True, capture_output=True, text=True
    ).stdout
    heavy = [name for name in HEAVY if f"'{name}'" in loaded]
    print(
        f"| {source} | {min(times):.0f} ms | {statistics.median(times):.0f} ms "
        f"| {', '.join(heavy) or 'none'} |"
    )


if __name__ == "__main__":
    main()
