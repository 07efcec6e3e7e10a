"""Every script under reports/ still starts: `--help` runs (its imports of the package resolve,
its arguments parse). Nothing else runs these scripts between their measurement runs, so a
refactor of the package would otherwise break them silently."""

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "reports").glob("*/*.py"))


def _help(script: Path):
    run = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    return script, run


def test_every_report_script_answers_help():
    assert len(SCRIPTS) >= 10
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(_help, SCRIPTS))
    failed = [f"{s.relative_to(ROOT)}: {r.stderr.strip()[-400:]}" for s, r in runs if r.returncode != 0]
    assert failed == []
    assert all("usage:" in r.stdout for _, r in runs)
