import sys
from pathlib import Path

# The readers live in env/checks (shared with scripts/check-env).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "checks"))
