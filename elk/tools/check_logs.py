#!/usr/bin/env python3
"""Check JSON log lines against ECS and elk/schema/fields.yml, e.g. a pod's logs on a cluster:

    kubectl -n brainscan logs deploy/brainscan-gateway | python elk/tools/check_logs.py -
    python elk/tools/check_logs.py reports/loadtest/stack-logs/*.log

Prints each problem once with the message of the first event that has it; exits 1 if any.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from elk_fields import Catalogue, check_event


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="log files, or - for standard input")
    args = parser.parse_args(argv)
    catalogue = Catalogue.load()
    problems: dict[str, str] = {}
    events = 0
    for name in args.files:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                problems.setdefault(f"{name}:{number}: not JSON", line[:120])
                continue
            if not isinstance(event, dict):
                problems.setdefault(f"{name}:{number}: not a JSON object", line[:120])
                continue
            events += 1
            for problem in check_event(event, catalogue):
                problems.setdefault(problem, str(event.get("message", ""))[:120])
    for problem, example in problems.items():
        sys.stdout.write(f"{problem}  (first in: {example!r})\n")
    sys.stdout.write(f"{events} events, {len(problems)} problems (ECS {catalogue.ecs_version})\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
