"""File-system facts the reports need."""

from pathlib import Path


def folder_size(path: Path) -> int:
    """Bytes of every file under `path` (0 when it is not a folder)."""
    path = Path(path)
    if not path.is_dir():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
