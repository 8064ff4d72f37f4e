"""The scheduler's modules import each other in one direction only, and the planning core
stays pure (SPEC 3: no Flask, no database), read from the source so that an import hidden
under ``TYPE_CHECKING`` or inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import portal.scheduler

PACKAGE = Path(portal.scheduler.__file__).parent
# The reservation layer (and its SQL) reads the database; everything else is the pure core.
# messages words the core's refusals with the translation layer: outside the pure core.
IMPURE = {"reservation", "statements", "messages"}
FORBIDDEN_IN_CORE = ("flask", "sqlalchemy", "psycopg", "portal.models", "portal.extensions")


def imports(module: str) -> set[str]:
    """Every module named by an import statement anywhere in ``module``'s source."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def modules() -> list[str]:
    return sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def sibling_imports(module: str) -> set[str]:
    prefix = "portal.scheduler."
    return {
        name[len(prefix):].split(".")[0]
        for name in imports(module)
        if name.startswith(prefix) and name[len(prefix):].split(".")[0] in modules()
    } - {module}


def test_no_import_cycle_among_the_scheduler_modules():
    graph = {m: sibling_imports(m) for m in modules()}
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for other in sorted(graph[module]):
            assert state.get(other) != "open", " -> ".join([*path, module, other])
            if other not in state:
                visit(other, [*path, module])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [])


def test_the_plain_data_depends_on_no_other_scheduler_module():
    assert sibling_imports("data") == set()


def test_the_planning_core_imports_no_web_framework_and_no_database():
    for module in modules():
        if module in IMPURE:
            continue
        bad = {n for n in imports(module) if n.startswith(FORBIDDEN_IN_CORE)}
        assert not bad, f"portal/scheduler/{module}.py imports {sorted(bad)}"
