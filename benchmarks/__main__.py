import sys

from benchmarks.node import NodeError
from benchmarks.run import main

try:
    sys.exit(main())
except NodeError as exc:
    print(f"benchmarks: {exc}", file=sys.stderr)
    sys.exit(2)
