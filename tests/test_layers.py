"""The layer rule of docs/DESIGN.md: a module imports only from its own layer or below.

Every ``import`` in ``src/monohand`` (at module level or inside a function: a lazy import is
still a dependency) is resolved to the unit it names, and each unit has a layer. A new module
must be placed here, so that its place in the architecture is decided, not drifted into.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "monohand"

# unit -> layer (low to high). A unit is a top-level module or package of monohand, or a
# submodule named here on its own (its package's rule does not bind it).
LAYERS = {
    "atomic": 0, "jsonfile": 0, "native_log": 0, "plotting": 0, "geometry": 0, "optim": 0,
    "progress": 0,
    "models": 1, "render": 1,
    "data": 2, "viz": 2, "export": 2, "outputs": 2, "record": 2,
    "nets": 3, "losses": 3, "notes": 3,
    "config": 4, "fit": 4, "hybrid": 4, "twohands": 4, "methods": 4, "train": 4, "predict": 4,
    "evaluate": 4, "ablate": 4,
    "reconstruct": 5, "demo": 5,
    "evaluate/real": 6, "video": 6, "serve": 6,
    "cli": 7, "__main__": 7, "__init__": 7,
}  # fmt: skip


def _unit(parts: tuple[str, ...]) -> str:
    """The unit of a module path inside monohand, e.g. ("evaluate", "real") -> evaluate/real."""
    if len(parts) >= 2 and "/".join(parts[:2]) in LAYERS:
        return "/".join(parts[:2])
    return parts[0]


def imports_of(source: str, pkg: tuple[str, ...]) -> set[tuple[str, ...]]:
    """The monohand module paths that a file of package ``pkg`` (e.g. ("data",)) imports,
    relative and absolute."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                mod = tuple(node.module.split(".")) if node.module else ()
                if mod:
                    found.add(base + mod)
                else:  # from . import x
                    found.update(base + (a.name,) for a in node.names)
            elif node.module and node.module.split(".")[0] == "monohand":
                found.add(tuple(node.module.split(".")[1:]) or ("__init__",))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "monohand":
                    found.add(tuple(a.name.split(".")[1:]) or ("__init__",))
    return {t for t in found if t}


def test_every_module_has_a_layer():
    units = {_unit(p.relative_to(SRC).with_suffix("").parts) for p in SRC.rglob("*.py")}
    assert not units - set(LAYERS), f"place these in LAYERS: {sorted(units - set(LAYERS))}"


def test_no_import_runs_up_the_layers():
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        here = _unit(path.relative_to(SRC).with_suffix("").parts)
        for target in imports_of(path.read_text(), path.relative_to(SRC).parent.parts):
            there = _unit(target)
            if there in LAYERS and LAYERS[there] > LAYERS[here]:
                bad.append(f"{path.relative_to(SRC)} ({here}, {LAYERS[here]}) imports "
                           f"{'.'.join(target)} ({there}, {LAYERS[there]})")  # fmt: skip
    assert not bad, "\n".join(bad)


def test_the_checker_sees_relative_and_lazy_imports():
    """The resolver itself: a lazy relative import one package up, a sibling module and an
    absolute import are all found."""
    source = ("from . import crops\n"
              "def g():\n    from ..reconstruct import x\n    import monohand.cli\n")  # fmt: skip
    assert imports_of(source, ("data",)) == {("reconstruct",), ("cli",), ("data", "crops")}


def test_design_names_every_module():
    """docs/DESIGN.md's package layout names every module: a top-level one in the first
    column, a package's submodule in its package's row."""
    design = (SRC.parents[1] / "docs" / "DESIGN.md").read_text()
    table = design[design.index("## Package layout"):design.index("One idea per module.")]
    rows = {}
    for line in table.splitlines():
        cells = line.split("|")
        if len(cells) > 3 and "`" in cells[1]:
            rows[cells[1].strip()] = cells[2]
    firsts = " ".join(rows)
    missing = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if len(rel.parts) == 1:
            found = f"`{rel.name}`" in firsts
        else:
            row = rows.get(f"`{rel.parts[0]}/`", "")
            found = rel.name == "__init__.py" or f"`{rel.name}`" in row
        if not found:
            missing.append(str(rel))
    assert not missing, f"name these in docs/DESIGN.md's package layout: {missing}"
