# SPDX-License-Identifier: MIT
"""Print side-by-side ratios from a pytest-benchmark JSON file.

Usage: python bench/report.py bench/results/micro.json

For every benchmark group, each implementation's median is compared with the
others measured in the same run ("x faster" = their median / our median).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def main(path: str) -> int:
    with open(path) as f:
        data = json.load(f)
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    correct: dict[tuple[str, str], bool] = {}
    for b in data["benchmarks"]:
        impl = b["params"].get("impl", b["name"])
        groups[b["group"]][impl] = b["stats"]["median"]
        correct[(b["group"], impl)] = bool(b.get("extra_info", {}).get("correct", True))
    print(f"{'group':40} {'implementation':24} {'median':>12} {'ratio vs wsfast':>16}")
    for group in sorted(groups):
        impls = groups[group]
        ours = [k for k in impls if k.startswith("wsfast")]
        base = min(impls[k] for k in ours) if ours else None
        for impl, median in sorted(impls.items(), key=lambda kv: kv[1]):
            ratio = f"{median / base:.2f}x" if base else "-"
            flag = "" if correct[(group, impl)] else "  WRONG RESULT"
            print(f"{group:40} {impl:24} {median * 1e6:10.2f}us {ratio:>16}{flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/micro.json"))
