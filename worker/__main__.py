"""`python -m worker`: one worker process, or a supervisor of several (worker/process.py)."""

import sys

from .process import main

if __name__ == "__main__":
    sys.exit(main())
