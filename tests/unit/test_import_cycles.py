"""The modules that used to import each other in circles stay out of any import cycle
(module-level and function-level imports both count; `if TYPE_CHECKING:` imports do not)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WATCHED = {
    "indexer.context", "indexer.search", "indexer.sessions",
    "indexer.pipeline.decode", "indexer.pipeline.decode_video",
    "indexer.pipeline.decode_document",
    "workers.celery_app", "workers.recovery",
    "bench.run", "bench.ocr_gate",
}


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for pkg in ("indexer", "service", "workers", "migrations", "bench"):
        for f in (ROOT / pkg).rglob("*.py"):
            name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = f
    return mods


def _imports(tree: ast.AST, mods: dict[str, Path]) -> set[str]:
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(n) for n in ast.walk(node)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = [f"{node.module}.{a.name}" for a in node.names]
            out |= {t for t in subs if t in mods} or {node.module}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {t for t in out if t in mods}


def cycles() -> list[list[str]]:
    mods = _modules()
    graph = {m: _imports(ast.parse(f.read_text()), mods) - {m} for m, f in mods.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_old_circles_stay_broken() -> None:
    bad = [c for c in cycles() if WATCHED & set(c)]
    assert bad == [], bad


def test_the_detector_sees_a_cycle(tmp_path: Path) -> None:
    a = ast.parse("from indexer.b import x")
    mods = {"indexer.a": tmp_path, "indexer.b": tmp_path}
    assert _imports(a, mods) == {"indexer.b"}
    guarded = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                        "    from indexer.b import x\n")
    assert _imports(guarded, mods) == set()
