import sys
from pathlib import Path

ENGINE_TESTS = str(Path(__file__).resolve().parents[1] / "engine")
if ENGINE_TESTS not in sys.path:  # the toy task and helpers of the engine tests
    sys.path.insert(0, ENGINE_TESTS)
