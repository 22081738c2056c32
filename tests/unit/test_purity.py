"""Verification does no I/O: the import graph of the pure core, read from the syntax tree.

Every `import` in every module of the package (at module level or inside a function; not those
under `if TYPE_CHECKING:`, which never run) is an edge.
A pure module may import only other pure modules and, outside the package, only what is on the
allow-list below: computation, never sockets, files, processes, threads or an event loop. Adding an
import to the allow-list is a decision to make in review, not an accident.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "provider" / "signet"

# The pure core: models, crypto, the formats' parsing and verification, what is trusted.
PURE_PREFIXES = (
    "signet.model.",
    "signet.crypto.keys",
    "signet.attest.",
    "signet.reasons",
    "signet.trust.model",
    "signet.trust.lifecycle",
    "signet.keyless.",
)
# Within a format's folder everything is pure except how its evidence is found.
FORMATS = "signet.formats."
IMPURE_IN_FORMATS = ("discover",)

ALLOWED_OUTSIDE = frozenset(
    {
        "__future__",
        "abc",
        "base64",
        "binascii",
        "collections",
        "dataclasses",
        "datetime",
        "enum",
        "functools",
        "hashlib",
        "itertools",
        "json",
        "math",
        "operator",
        "re",
        "string",
        "struct",
        "types",
        "typing",
        "warnings",
        "cryptography",
        "Crypto",
    }
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_pure(module: str) -> bool:
    if module.startswith(FORMATS):
        return module.rsplit(".", 1)[-1] not in IMPURE_IN_FORMATS
    return any(module == p.rstrip(".") or module.startswith(p) for p in PURE_PREFIXES)


@cache
def imports_of(module: str) -> frozenset[str]:
    """Absolute names of everything `module` imports (a package's `__init__` is one of them)."""
    path = all_modules()[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from signet.formats import manifest` imports a module, not a name
            found.update(f"{base}.{alias.name}" for alias in node.names)
    modules = all_modules()
    return frozenset(name for name in found if name in modules or not name.startswith("signet"))


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under `if TYPE_CHECKING:` (annotations only; never run)."""
    nodes: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            stack.extend(node.orelse)
            continue
        nodes.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return nodes


def outside(name: str) -> str:
    return name.split(".", maxsplit=1)[0]


PURE = sorted(m for m in all_modules() if is_pure(m))


def test_the_pure_core_is_what_it_says() -> None:
    """The pure set is found by name; check it holds what verification needs."""
    assert "signet.formats.cosign_classic.verify" in PURE
    assert "signet.crypto.keys" in PURE
    assert "signet.model.report" in PURE
    assert not any(m.startswith(("signet.oci", "signet.service", "signet.http")) for m in PURE)


@pytest.mark.parametrize("module", PURE)
def test_a_pure_module_imports_only_pure_modules(module: str) -> None:
    for name in imports_of(module):
        if name.startswith("signet"):
            assert name == "signet" or is_pure(name), f"{module} imports {name}, which is not pure"
        else:
            assert outside(name) in ALLOWED_OUTSIDE, (
                f"{module} imports {name}; a pure module may not (see ALLOWED_OUTSIDE)"
            )


@pytest.mark.parametrize(
    ("module", "expected"),
    [("signet.oci.client", "httpx"), ("signet.http.app", "starlette")],
)
def test_the_graph_sees_an_edge_modules_imports(module: str, expected: str) -> None:
    assert expected in {outside(name) for name in imports_of(module)}
