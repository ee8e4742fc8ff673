"""Build (or refresh) the cached tuxpaint evaluation manifest and print its summary.

    apt-get install tuxpaint-stamps-default
    .venv/bin/python scripts/build_eval_set.py [--refresh]
"""

from __future__ import annotations

import sys
from collections import Counter

from bench import tuxpaint


def main() -> None:
    data = tuxpaint.manifest(refresh="--refresh" in sys.argv)
    for split in ("tune", "test"):
        its = tuxpaint.items(data, split)
        qs = tuxpaint.queries(data, split)
        cats = Counter(i.category for i in its)
        print(f"{split}: {len(its)} images in {len(cats)} categories; "
              f"{sum(q.category is not None for q in qs)} present and "
              f"{sum(q.category is None for q in qs)} absent queries")
    print("held out of the index:", ", ".join(data["absent_categories"]))


if __name__ == "__main__":
    main()
