"""Compare the records of two results folders value by value (behaviour-preservation check).

    python scripts/compare_results.py DIR_BEFORE DIR_AFTER    # exit 0 and no output when identical
"""

import sys

from pmrfusion.bench.records import read_records


def main() -> int:
    a, b = (read_records(d) for d in sys.argv[1:3])
    diffs = [f"{i}: {x} != {y}" for i, (x, y) in enumerate(zip(a, b)) if x != y]
    if len(a) != len(b):
        diffs.append(f"{len(a)} records vs {len(b)}")
    print("\n".join(diffs[:20]), end="\n" if diffs else "")
    return 1 if diffs else 0


if __name__ == "__main__":
    raise SystemExit(main())
