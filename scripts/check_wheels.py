"""Install a packaged wheel into a fresh virtualenv without torch, load it by package name and run
`spacy evaluate` on the task's test split (writes metrics/<run>/<task>/wheel.json).

    python scripts/check_wheels.py --run full --task ner --package en_bertprod_ner --version 0.1.0

spacy_bertprod itself is installed from this checkout (it is not on PyPI here); everything else
comes from the package index, exactly as a user's `pip install` would.
"""

import argparse
import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path


def run(cmd, **kwargs):
    print("$", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def test_data(corpus: Path) -> Path:
    """The test split: CORPUS/test.spacy, or the folder CORPUS/test of the multi-task corpus."""
    return corpus / "test" if (corpus / "test").is_dir() else corpus / "test.spacy"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", default="full")
    parser.add_argument("--task", required=True, choices=["ner", "textcat", "trf"])
    parser.add_argument("--package", required=True, help="Package name as spacy package wrote it (LANG_NAME)")
    parser.add_argument("--version", default="0.1.0")
    args = parser.parse_args()
    found = sorted((Path("packages") / args.run / f"{args.package}-{args.version}" / "dist").glob("*.whl"))
    if not found:
        print(
            f"No wheel for {args.package} {args.version} under packages/{args.run}: run the {args.task}-package "
            "command first.",
            file=sys.stderr,
        )
        return 1
    env = Path("training") / args.run / f"wheel-env-{args.task}"
    if env.exists():
        shutil.rmtree(env)
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", ".", found[-1]])
    frozen = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True
    ).stdout.lower()
    heavy = [p for p in ("torch==", "transformers==", "spacy-transformers==") if p in frozen]
    if heavy:
        print(f"The wheel pulled in {heavy}: serving must not need torch.", file=sys.stderr)
        return 1
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    size = sum(p.stat().st_size for p in Path(site).rglob("*") if p.is_file())
    run(
        [
            python,
            "-c",
            f"import spacy; nlp = spacy.load('{args.package}'); doc = nlp('Alice flew to Paris with Bob'); "
            f"print('{args.package}', nlp.pipe_names, [(e.text, e.label_) for e in doc.ents], "
            "sorted(doc.cats.items(), key=lambda x: -x[1])[:3])",
        ]
    )
    out = Path("metrics") / args.run / args.task / "wheel.json"
    run(
        [
            python,
            "-m",
            "spacy",
            "evaluate",
            args.package,
            test_data(Path("corpus") / args.run / args.task),
            "--output",
            out,
        ]
    )
    scores = json.loads(out.read_text())
    scores.update(virtualenv_site_packages_bytes=size, wheel=found[-1].name, wheel_bytes=found[-1].stat().st_size)
    out.write_text(json.dumps(scores, indent=2))
    shutil.rmtree(env)  # the check is done; the venv is 300+ MB
    print(
        f"{args.package}: wheel {found[-1].stat().st_size / 1e6:.1f} MB, virtualenv site-packages {size / 1e6:.0f} "
        "MB, torch-free"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
