"""The package's shape: modules in layers, each importing only its own layer or lower ones, and
no import cycle anywhere (a stage module never imports the pipeline)."""

from __future__ import annotations

import ast
from pathlib import Path

import am_patch

PACKAGE = Path(am_patch.__file__).parent

# Lowest first. A module may import modules of its own layer or of lower layers, never higher.
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(layer.split())
    for layer in (
        # plain values and mechanisms that know nothing of git, config or runs
        "am_patch errors events flags layout limits proc crash interrupts repo.objects",
        # git, config and the run's own files
        "git config v4config runlog lock verdicts "
        "repo.walk repo.trees repo.workdir repo.repository repo",
        "progress",
        # the domain: one noun each
        "pool sandbox policy preflight patchfile archive publish options precommit",
        "workspace",
        "scope gates apply landing toolcache inbox bytecode",
        "gating",
        "treecheck audit",
        # a run: its context, its stages, their order
        "context",
        "stages",
        "promotion",
        "pipeline batch",
        # entry points
        "cli hooks.install hooks.pre_commit hooks.pre_receive",
        "hooks.pre_push demo __main__",
        "hooks hooks.cli hooks.__main__",
    )
)


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    return name or "am_patch"


def imports() -> dict[str, set[str]]:
    """Each module of the package and the package modules it imports (at any depth of its code:
    a deferred import inside a function counts too)."""
    found: dict[str, set[str]] = {}
    modules = {_module(p) for p in PACKAGE.rglob("*.py")}
    for path in PACKAGE.rglob("*.py"):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("am_patch")
            ):
                base = node.module.removeprefix("am_patch").lstrip(".")
                for alias in node.names:
                    child = f"{base}.{alias.name}".lstrip(".")
                    names.append(child if child in modules else base or "am_patch")
            elif isinstance(node, ast.Import):
                names += [
                    a.name.removeprefix("am_patch.")
                    for a in node.names
                    if a.name.startswith("am_patch")
                ]
            deps.update(n for n in names if n)
        found[_module(path)] = deps - {_module(path)}
    return found


def layer_of(module: str) -> int:
    for number, layer in enumerate(LAYERS):
        if module in layer:
            return number
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")


def test_every_module_has_a_layer() -> None:
    for module in imports():
        layer_of(module)


def test_no_module_imports_a_higher_layer() -> None:
    upward = [
        f"{module} (layer {layer_of(module)}) imports {dep} (layer {layer_of(dep)})"
        for module, deps in sorted(imports().items())
        for dep in sorted(deps)
        if dep in {m for layer in LAYERS for m in layer} and layer_of(dep) > layer_of(module)
    ]
    assert upward == []


def test_there_is_no_import_cycle() -> None:
    graph = imports()
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join((*path, module)))
        if module in done:
            return
        for dep in sorted(graph.get(module, ())):
            visit(dep, (*path, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())


def test_no_stage_or_domain_module_imports_the_pipeline() -> None:
    importers = sorted(m for m, deps in imports().items() if "pipeline" in deps)
    assert importers == ["cli"]
