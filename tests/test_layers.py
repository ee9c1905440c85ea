"""The layers: the runtime (`gridline/`) below the services, the CLI (`gridline_cli/`) above both.

Read from the source (ast), so a module that would fail to import is checked all the same, and
an import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = "gridline"
SERVICES = "services"
CLI = "gridline_cli"
# Calls that import a module named by a string.
DYNAMIC_IMPORTS = {"import_module", "__import__"}


def module_name(path: Path) -> str:
    """The dotted name of a module file under ROOT."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(source: str, module: str, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in the source, relative ones resolved against `module`,
    and every `importlib.import_module("...")`/`__import__("...")` whose name starts as text."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from services import intake` imports services.intake.
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}" if alias.name != "*" else base
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if name in DYNAMIC_IMPORTS:
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    yield node.lineno, first.value
                elif isinstance(first, ast.JoinedStr) and first.values:
                    head = first.values[0]
                    if isinstance(head, ast.Constant) and isinstance(head.value, str):
                        yield node.lineno, head.value


def top(name: str) -> str:
    return name.split(".", 1)[0]


def service_of(name: str) -> str | None:
    """The service a module name belongs to (`services.intake.x` → intake), else None."""
    parts = name.split(".")
    if parts[0] != SERVICES:
        return None
    # `services.` (an f-string's head) names no particular service: count it as a foreign one.
    return parts[1] if len(parts) > 1 and parts[1] else "?"


def violations(path: Path, source: str) -> list[str]:
    """Every import in a module that crosses the layers the wrong way."""
    module = module_name(path)
    layer = top(module)
    own_service = service_of(module)
    found = []
    for line, name in imported(source, module, path.name == "__init__.py"):
        where = f"{path.relative_to(ROOT)}:{line} imports {name}"
        if top(name) == CLI and layer != CLI:
            found.append(f"{where}: only the CLI imports the CLI")
        elif layer == RUNTIME and top(name) == SERVICES:
            found.append(f"{where}: the runtime imports no service")
        elif own_service and service_of(name) not in (None, own_service):
            found.append(f"{where}: a service imports no other service")
    return found


def modules(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def test_the_runtime_and_the_services_import_only_downwards() -> None:
    checked = modules(RUNTIME, SERVICES)
    # Guards against a walk that finds nothing and so passes.
    assert len(checked) > 100
    assert {service_of(module_name(p)) for p in checked} >= {
        "intake",
        "assignment",
        "escalation",
        "notify",
    }
    found = [v for path in checked for v in violations(path, path.read_text())]
    assert found == []


def test_the_cli_is_a_package_above_the_runtime() -> None:
    assert not (ROOT / RUNTIME / "cli").exists()
    assert (ROOT / CLI / "main.py").exists()
    found = [v for path in modules(CLI) for v in violations(path, path.read_text())]
    assert found == []


@pytest.mark.parametrize(
    ("path", "source", "says"),
    [
        ("gridline/bus/x.py", "from services.intake import storage", "the runtime imports no"),
        ("gridline/bus/x.py", "import services.notify.groups as g", "the runtime imports no"),
        ("gridline/x.py", "def f():\n    import services", "the runtime imports no"),
        (
            "gridline/x.py",
            "import importlib\nimportlib.import_module(f'services.{name}.storage')",
            "the runtime imports no",
        ),
        ("gridline/db.py", "from gridline_cli.dlq import replay", "only the CLI imports the CLI"),
        ("services/notify/x.py", "from gridline_cli import main", "only the CLI imports the CLI"),
        ("services/notify/x.py", "from services.intake.signing import h", "no other service"),
        ("services/notify/x.py", "from services import escalation", "no other service"),
        ("services/notify/channels/x.py", "from ...intake import domain", "no other service"),
    ],
)
def test_a_crossing_import_is_found(path: str, source: str, says: str) -> None:
    [violation] = violations(ROOT / path, source)
    assert says in violation


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("services/notify/x.py", "from services.notify.groups import load_groups"),
        ("services/notify/channels/x.py", "from ..groups import load_groups"),
        ("services/notify/x.py", "from gridline.db import Database"),
        ("gridline_cli/x.py", "from services.intake import integrator_admin"),
        ("gridline/x.py", "import servicesx"),
    ],
)
def test_an_allowed_import_passes(path: str, source: str) -> None:
    assert violations(ROOT / path, source) == []
