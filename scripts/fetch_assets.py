"""Fill assets/ from a local mirror of the upstream files, verifying each file's sha256.

The upstream URLs and checksums live in project.yml (assets); this is the offline path:
    python scripts/fetch_assets.py --mirror ../shared/data
A file already in assets/ with the right checksum is left alone; a wrong one is an error.
"""

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

import yaml


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--mirror", type=Path, required=True, help="Folder laid out like SOURCES.tsv (e.g. ../shared/data)"
    )
    parser.add_argument("--project", type=Path, default=Path("project.yml"))
    args = parser.parse_args()
    assets = yaml.safe_load(args.project.read_text())["assets"]
    if not args.mirror.is_dir() and not all(Path(a["dest"]).exists() for a in assets if "mirror_path" in a):
        # Not an error by itself: a run on the user's own data (vars.*_train/dev/test) needs none of
        # the default datasets, and `bertprod data` names any file that is missing when it is used.
        print(
            f"WARNING the data mirror {args.mirror} is not here: the default datasets (WNUT-17, Banking77) are not "
            "filled in. Fine for your own data; for the defaults pass --vars.mirror PATH_TO_MIRROR.",
            file=sys.stderr,
        )
        return 0
    failures = []
    for asset in assets:
        if "mirror_path" not in asset:
            continue
        dest, source = Path(asset["dest"]), args.mirror / asset["mirror_path"]
        expected = asset["sha256"]
        if dest.exists() and sha256(dest) == expected:
            print(f"ok      {dest}")
            continue
        if not source.exists():
            failures.append(f"{source} is missing from the mirror (needed for {dest}; upstream: {asset['url']})")
            continue
        if sha256(source) != expected:
            failures.append(
                f"{source} does not match the sha256 in project.yml: the mirror is not the pinned upstream version"
            )
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        print(f"copied  {source} -> {dest}")
    for failure in failures:
        print(f"ERROR   {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
