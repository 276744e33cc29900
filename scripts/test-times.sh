#!/usr/bin/env bash
# The slowest tests of the last `make test` (or any `cargo nextest run`), from nextest's JUnit
# report: `scripts/test-times.sh [N]` prints the N slowest (default 25) and the sum per binary.
set -euo pipefail
cd "$(dirname "$0")/.."
report=target/nextest/default/junit.xml
[ -f "$report" ] || { echo "no $report: run make test first" >&2; exit 1; }
python3 - "$report" "${1:-25}" <<'PY'
import sys, xml.etree.ElementTree as ET
cases = []
for suite in ET.parse(sys.argv[1]).getroot().iter("testsuite"):
    for case in suite.iter("testcase"):
        cases.append((float(case.get("time", 0)), suite.get("name"), case.get("name")))
cases.sort(reverse=True)
for t, suite, name in cases[: int(sys.argv[2])]:
    print(f"{t:8.1f} s  {suite}  {name}")
per = {}
for t, suite, _ in cases:
    per[suite] = per.get(suite, 0) + t
print("per binary:")
for suite, t in sorted(per.items(), key=lambda x: -x[1]):
    print(f"{t:8.1f} s  {suite}")
print(f"{sum(t for t, _, _ in cases):8.1f} s  in {len(cases)} tests")
PY
