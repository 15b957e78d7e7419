import sys
from pathlib import Path

ENGINE_TESTS = str(Path(__file__).resolve().parent)
if ENGINE_TESTS not in sys.path:  # the toy task and helpers, also for the CLI tests
    sys.path.insert(0, ENGINE_TESTS)
