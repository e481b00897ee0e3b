"""Where the shared test vectors and seeds live (beside the project, never copied into it)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
VECTORS = SHARED / "vectors"
SEEDS = SHARED / "seeds"
