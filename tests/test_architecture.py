"""Structural rules of the code base."""
import ast
from pathlib import Path

NMT = Path(__file__).resolve().parents[1] / "nmt"


def _imports(path: Path) -> set:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_adapter_imports_fairseq_or_argparse():
    offenders = []
    for path in NMT.rglob("*.py"):
        if "fairseq_backend" in path.parts:
            continue
        bad = {n for n in _imports(path) if n.split(".")[0] in ("fairseq", "fairseq_cli", "argparse", "omegaconf")}
        if bad:
            offenders.append(f"{path.relative_to(NMT)}: {sorted(bad)}")
    assert not offenders, offenders


# the forbidden spellings, assembled so that this file does not contain them itself
UNSAFE = ("weights_only=" + "False", "TORCH_FORCE_NO_" + "WEIGHTS_ONLY_LOAD", "unsafe_" + "deserialization=True")


def test_no_unsafe_checkpoint_loading():
    for path in list(NMT.rglob("*.py")):
        text = path.read_text(encoding="utf-8").replace(" ", "")
        for pattern in UNSAFE:
            assert pattern not in text, (path, pattern)
