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


def test_no_unsafe_checkpoint_loading():
    for path in list(NMT.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "weights_only=False" not in text.replace(" ", ""), path
        assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in text, path
        assert "unsafe_deserialization=True" not in text.replace(" ", ""), path
