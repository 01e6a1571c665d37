"""`make loadtest`: a bounded headless Locust run against the local stack, with CSV + HTML reports.

Starts inference and the gateway as processes on free loopback ports (the trained model from
artifacts/export when it passes its checks, else a stand-in; see loadtest_stack), runs Locust
in its own process (it must be imported before anything else, so never in this one), prints a
summary and exits with Locust's code: non-zero on any failed request or error.
With --host, no stack is started and the given gateway is tested (a cluster's, for instance).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

from loadtest_stack import REPO, TRAINED_MODEL, local_stack, model_package, stand_in_package

HERE = Path(__file__).resolve().parent


def locust_command(args: argparse.Namespace, host: str) -> list[str]:
    locustfiles = str(HERE / "locustfile.py")
    if args.shape:
        locustfiles += f",{HERE / 'shape_steps.py'}"
    command = [
        sys.executable, "-m", "locust", "-f", locustfiles, "--headless", "-H", host,
        "--csv", str(args.out / "locust"), "--html", str(args.out / "locust.html"),
        "--only-summary", "--exit-code-on-error", "1", "--stop-timeout", "10",
        "--loglevel", "WARNING", "--images-per-variant", str(args.images_per_variant),
    ]  # fmt: skip
    if not args.shape:
        command += ["-u", str(args.users), "-r", str(args.spawn_rate), "-t", args.run_time]
    if args.tags:
        command += ["--tags", *args.tags]
    return command + args.locust_args


def summary(stats_csv: Path) -> str:
    """The Aggregated row of Locust's stats CSV, in one line."""
    with stats_csv.open() as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    total = rows.get("Aggregated")
    if total is None:
        return "no requests were made"
    return (
        f"{total['Request Count']} requests, {total['Failure Count']} failures, "
        f"{float(total['Requests/s']):.1f} req/s, p50 {total['50%']} ms, p95 {total['95%']} ms, "
        f"p99 {total['99%']} ms, max {float(total['Max Response Time']):.0f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help="concurrent users (default 20)")
    parser.add_argument("--spawn-rate", type=float, default=5, help="users started per second")
    parser.add_argument("--run-time", default="60s", help="how long, e.g. 20s, 2m (default 60s)")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "loadtest")
    parser.add_argument("--host", help="test this gateway instead of starting a local stack")
    parser.add_argument("--model-dir", type=Path, default=TRAINED_MODEL)
    parser.add_argument("--stand-in", action="store_true", help="serve the stand-in model")
    parser.add_argument("--shape", action="store_true", help="step load (shape_steps.py)")
    parser.add_argument("--tags", nargs="*", help="only these locustfile tags")
    parser.add_argument("--images-per-variant", type=int, default=2)
    parser.add_argument("locust_args", nargs="*", help="after --: passed to locust as they are")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    if args.host:
        return subprocess.run(locust_command(args, args.host), check=False).returncode
    with tempfile.TemporaryDirectory(prefix="brainscan-loadtest-") as work:
        if args.stand_in:
            package, what = stand_in_package(Path(work) / "stand-in-model"), "stand-in model"
        else:
            package, what = model_package(Path(work), args.model_dir)
        sys.stdout.write(f"serving the {what}\n")
        with local_stack(package, args.out / "stack-logs") as urls:
            sys.stdout.write(f"gateway {urls['gateway']}, inference {urls['inference']}\n")
            sys.stdout.flush()
            code = subprocess.run(locust_command(args, urls["gateway"]), check=False).returncode
    stats = args.out / "locust_stats.csv"
    if stats.is_file():
        sys.stdout.write(f"{summary(stats)}\nreports: {args.out}/locust.html, locust_*.csv\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
