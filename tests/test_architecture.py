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


def _nmt_imports(path: Path) -> set:
    """The nmt modules a module imports, lazily or not (``from nmt.x import y`` counts y when it is a module)."""
    modules = {".".join(p.relative_to(NMT.parent).with_suffix("").parts).removesuffix(".__init__")
               for p in NMT.rglob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in modules and name != "nmt")
    return found


def test_no_import_cycles_between_nmt_modules():
    graph = {}
    for path in NMT.rglob("*.py"):
        name = ".".join(path.relative_to(NMT.parent).with_suffix("").parts).removesuffix(".__init__")
        graph[name] = _nmt_imports(path) - {name}
    state: dict = {}

    def visit(module, trail):
        state[module] = "open"
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == "open":
                raise AssertionError(" -> ".join(trail[trail.index(dep):] + [dep]))
            if dep not in state:
                visit(dep, trail + [dep])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
