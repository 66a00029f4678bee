"""The benchmark runner behind ``scripts/bench [NAME ...]``.

Runs each benchmark, adds the machine and the date, writes
``bench/results/NAME.json`` and regenerates the table in ``bench/RESULTS.md``
from every result file present.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def run_one(name: str) -> dict[str, object]:
    module = importlib.import_module(f"bench.{name}")
    result = module.run()
    if inspect.isawaitable(result):
        result = asyncio.run(result)
    record = dict(result)
    record["machine"] = machine()
    record["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def write_table() -> None:
    rows = ["| benchmark | metric | value | unit | target | date |", "|---|---|---|---|---|---|"]
    for path in sorted(RESULTS.glob("*.json")):
        record = json.loads(path.read_text())
        for metric, fig in record.items():
            if isinstance(fig, dict) and "value" in fig:
                rows.append(
                    f"| {path.stem} | {metric} | {fig['value']} | {fig.get('unit', '')} "
                    f"| {fig.get('target', '')} | {record.get('date', '')[:10]} |"
                )
    text = (
        "# Benchmark results\n\n"
        "Figures as last measured by `scripts/bench` (regenerated from `bench/results/*.json`;\n"
        "the machine of each run is recorded in its JSON file).\n\n" + "\n".join(rows) + "\n"
    )
    (HERE / "RESULTS.md").write_text(text)


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_"))
    for name in names:
        record = run_one(name)
        figures = {k: v for k, v in record.items() if isinstance(v, dict) and "value" in v}
        print(f"{name}: {json.dumps(figures)}")
    write_table()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
