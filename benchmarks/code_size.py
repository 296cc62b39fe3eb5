"""Size of the package: lines and code lines per folder, and the longest function bodies.

Run from the repo root::

    python -m benchmarks.code_size [--top 10] [--root xatmodist]

Code lines leave out blank lines, comments and docstrings (every bare string
statement, attribute docstrings included); a function body is counted from its
first statement after the docstring to its end, nested functions included.
Issue 19's targets: no function body over 80 code lines in ``xatmodist/``.
"""

from __future__ import annotations

import argparse
import ast
from collections import defaultdict
from pathlib import Path


def _doc_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        value = getattr(node, "value", None)
        if isinstance(node, ast.Expr) and isinstance(value, ast.Constant):
            if isinstance(value.value, str):
                lines.update(range(node.lineno, node.end_lineno + 1))
    return lines


def _is_code(text: str) -> bool:
    t = text.strip()
    return bool(t) and not t.startswith("#")


def measure(root: Path) -> tuple[dict, list]:
    """(per folder: [lines, code lines]), [(code lines, 'path:line name'), ...] of functions."""
    folders: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    functions = []
    for path in sorted(root.rglob("*.py")):
        src = path.read_text()
        tree, lines = ast.parse(src), src.splitlines()
        doc = _doc_lines(tree)
        code = [i for i, t in enumerate(lines, 1) if _is_code(t) and i not in doc]
        entry = folders[str(path.parent)]
        entry[0] += len(lines)
        entry[1] += len(code)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = [i for i in code if node.body[0].lineno <= i <= node.end_lineno]
                functions.append((len(body), f"{path}:{node.lineno} {node.name}"))
    return dict(folders), sorted(functions, reverse=True)


def main() -> None:
    """Print the table and the longest functions."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="xatmodist")
    p.add_argument("--top", type=int, default=10)
    args = p.parse_args()
    folders, functions = measure(Path(args.root))
    print(f"{'folder':<24} {'lines':>7} {'code':>7}")  # noqa: T201
    for folder, (n, c) in sorted(folders.items()):
        print(f"{folder:<24} {n:7d} {c:7d}")  # noqa: T201
    total = [sum(v[i] for v in folders.values()) for i in (0, 1)]
    print(f"{'total':<24} {total[0]:7d} {total[1]:7d}")  # noqa: T201
    print("longest function bodies (code lines):")  # noqa: T201
    for n, where in functions[: args.top]:
        print(f"{n:5d}  {where}")  # noqa: T201


if __name__ == "__main__":
    main()
