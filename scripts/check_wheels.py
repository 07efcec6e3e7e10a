"""Install the packaged wheels into a fresh virtualenv without torch, load them by package name
and run `spacy evaluate` on each task's test split (writes metrics/<run>/<task>/wheel.json).

spacy_bertprod itself is installed from this checkout (it is not on PyPI here); everything else
comes from the package index, exactly as a user's `pip install` would.
"""
import argparse
import json
import subprocess
import sys
import venv
from pathlib import Path

TASKS = {"ner": "en_bertprod_ner", "textcat": "en_bertprod_textcat"}


def run(cmd, **kwargs):
    print("$", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", default="full")
    parser.add_argument("--version", default="0.1.0")
    args = parser.parse_args()
    env = Path("training") / args.run / "wheel-env"
    if env.exists():
        import shutil

        shutil.rmtree(env)
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    wheels = []
    for task, name in TASKS.items():
        found = sorted((Path("packages") / args.run / f"{name}-{args.version}" / "dist").glob("*.whl"))
        if not found:
            print(f"No wheel for {name} under packages/{args.run}: run the `package` command first.", file=sys.stderr)
            return 1
        wheels.append(found[-1])
    run([python, "-m", "pip", "install", "--quiet", "."] + wheels)
    frozen = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True).stdout.lower()
    heavy = [p for p in ("torch==", "transformers==", "spacy-transformers==") if p in frozen]
    if heavy:
        print(f"The wheels pulled in {heavy}: serving must not need torch.", file=sys.stderr)
        return 1
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True).stdout.strip()
    size = sum(p.stat().st_size for p in Path(site).rglob("*") if p.is_file())
    for task, name in TASKS.items():
        run([python, "-c", f"import spacy; nlp = spacy.load('{name}'); print('{name}', nlp.pipe_names, [(e.text, e.label_) for e in nlp('Alice flew to Paris with Bob').ents])"])
        out = Path("metrics") / args.run / task / "wheel.json"
        run([python, "-m", "spacy", "evaluate", name, Path("corpus") / args.run / task / "test.spacy", "--output", out])
        scores = json.loads(out.read_text())
        scores["virtualenv_site_packages_bytes"] = size
        out.write_text(json.dumps(scores, indent=2))
    print(f"wheel virtualenv site-packages: {size / 1e6:.0f} MB, torch-free")
    return 0


if __name__ == "__main__":
    sys.exit(main())
