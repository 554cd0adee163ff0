"""Structural rules of the code base: the layers of docs/ARCHITECTURE.md, no cycles, small modules,
fairseq behind its adapter."""
import ast
import re
from pathlib import Path

NMT = Path(__file__).resolve().parents[1] / "nmt"
ARCHITECTURE = NMT.parent / "docs" / "ARCHITECTURE.md"


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


def _module_name(path: Path) -> str:
    parts = path.relative_to(NMT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _nmt_imports(path: Path, known: set, load_time_only: bool) -> set:
    """The nmt modules a module imports: when it is loaded (top-level imports), or at all."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body if load_time_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name in known}


def _import_graph(load_time_only: bool) -> dict:
    paths = {_module_name(p): p for p in NMT.rglob("*.py")}
    graph = {name: _nmt_imports(path, set(paths), load_time_only) - {name} for name, path in paths.items()}
    graph["nmt"] = set()  # the package's lazy nmt.Translator, and every module imports the package
    return {name: targets - {"nmt"} for name, targets in graph.items()}


def _path(graph: dict, start: str, goal: str) -> list | None:
    trail, seen = {start: None}, [start]
    while seen:
        name = seen.pop()
        for other in sorted(graph[name]):
            if other not in trail:
                trail[other] = name
                seen.append(other)
    if goal not in trail:
        return None
    out = [goal]
    while out[-1] != start:
        out.append(trail[out[-1]])
    return out[::-1]


def test_no_import_cycles():
    """No cycle of imports between nmt modules, counting the imports inside functions too
    (translate does not import export, which imports translate; training does not import pretrained...)."""
    graph = _import_graph(False)
    for name in sorted(graph):
        for other in sorted(graph[name]):
            back = _path(graph, other, name)
            assert back is None, f"import cycle: {name} -> {' -> '.join(back)}"
    # translation asks the bundle about exports; nmt export builds on translation, not the other way round
    # (the translate commands' module, a command-line module, offers nmt export beside nmt translate)
    graph = _import_graph(False)
    for name in sorted(n for n in graph if n.startswith("nmt.translate.") and n != "nmt.translate.cli"):
        assert _path(graph, name, "nmt.export") is None, _path(graph, name, "nmt.export")


def test_modules_stay_small():
    big = {str(p.relative_to(NMT)): n for p in NMT.rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert not big, big


# -- the layers of docs/ARCHITECTURE.md ----------------------------------------------------------

def _layer_table() -> list[tuple[str, list[str]]]:
    """``[(layer name, [module patterns]), ...]`` bottom to top, read from the doc's table."""
    rows = []
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*(\d+)\.\s*([^|]+?)\s*\|([^|]*)\|", line)
        if match:
            assert int(match.group(1)) == len(rows) + 1, f"layer rows out of order at {line!r}"
            rows.append((match.group(2), re.findall(r"`([^`]+)`", match.group(3))))
    assert len(rows) >= 5, "docs/ARCHITECTURE.md has no layer table"
    return rows


def _layer_of(module: str, table) -> int | None:
    """The layer the doc places ``module`` in: a file named for it (``bundle.py``, ``*/cli.py``), else its
    package (``data/``); None when the table does not say."""
    parts = module.split(".")[1:]  # without "nmt"
    exact, wildcard, package = None, None, None
    for number, (_, patterns) in enumerate(table, start=1):
        for pattern in patterns:
            if pattern.endswith(".py"):
                path = pattern[:-3].split("/")
                if path == (parts or ["__init__"]):
                    exact = number
                elif path[0] == "*" and len(parts) == 2 and parts[1] == path[1]:
                    wildcard = number
            elif pattern.endswith("/") and parts and parts[0] == pattern[:-1]:
                package = number
    return exact or wildcard or package


def _all_imports(path: Path, known: set) -> set:
    """Every nmt module ``path`` imports, at load time or inside functions; ``from nmt import x`` is module
    ``nmt.x`` when there is one."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & known
            names.update(submodules or {node.module})
    return {name for name in names if name in known}


def test_every_import_respects_the_layers_of_the_architecture_doc():
    table = _layer_table()
    modules = {_module_name(p): p for p in NMT.rglob("*.py")}
    unplaced = sorted(m for m in modules if m != "nmt" and _layer_of(m, table) is None)
    assert not unplaced, f"docs/ARCHITECTURE.md's layer table does not place {unplaced}"
    upward = []
    for module, path in sorted(modules.items()):
        if module == "nmt":  # the package: its version, and the lazy nmt.Translator (the one exception)
            continue
        mine = _layer_of(module, table)
        for target in sorted(_all_imports(path, set(modules)) - {"nmt", module}):
            theirs = _layer_of(target, table)
            if theirs > mine:
                upward.append(f"{module} ({mine}. {table[mine - 1][0]}) imports {target} "
                              f"({theirs}. {table[theirs - 1][0]})")
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_the_layer_check_sees_lazy_imports_and_wildcards():
    """The check itself: a lazy import inside a function counts, and the table's patterns place modules."""
    table = _layer_table()
    assert _layer_of("nmt.data.cli", table) == len(table)  # */cli.py beats data/
    assert _layer_of("nmt.data.clean", table) < _layer_of("nmt.fairseq_backend.loop", table)
    assert _layer_of("nmt.cli", table) == len(table) and _layer_of("nmt.errors", table) == 1
    training = _all_imports(NMT / "training" / "cli.py", {_module_name(p) for p in NMT.rglob("*.py")})
    assert "nmt.training.translation" in training  # imported inside the train command
