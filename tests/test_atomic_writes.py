"""Every output file is written atomically: a scan of src/ (ast) finds each call that writes a file and requires it to
go through pseval.files (write_atomic's callback, atomic_target's temp path) or into memory (io.BytesIO)."""

from __future__ import annotations

import ast

from tests.conftest import REPO

SRC = REPO / "src" / "pseval"
# Calls that write whatever their first argument (or receiver) names; `save`/`dump` as np.save, torch.save, json.dump
# (a bare `save(tensors)` is safetensors' in-memory one, which returns bytes).
WRITERS = {"write_text", "write_bytes", "savefig", "save_file", "to_csv", "to_parquet", "imwrite"}
MODULE_WRITERS = {"save", "dump"}


def _name(func: ast.expr) -> str | None:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _writes_mode(call: ast.Call) -> bool:
    """open(...) / path.open(...) with a mode that creates or changes a file."""
    mode = next((k.value for k in call.keywords if k.arg == "mode"), None)
    if mode is None:
        pos = 1 if isinstance(call.func, ast.Name) else 0
        mode = call.args[pos] if len(call.args) > pos else None
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and any(c in mode.value for c in "wax+")


def _assigned_from(func: ast.AST, var: str) -> set[str]:
    """The names of the calls `var` is assigned from inside `func` (`buf = io.BytesIO()` -> {"BytesIO"})."""
    out = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and any(
                isinstance(t, ast.Name) and t.id == var for t in node.targets):
            out.add(_name(node.value.func) or "")
    return out


def unguarded_writes(source: str, name: str) -> list[str]:
    """`name:line: call` for each file write in `source` that is not atomic."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    def ancestors(node: ast.AST):
        while node in parents:
            node = parents[node]
            yield node

    def guarded(call: ast.Call) -> bool:
        chain = list(ancestors(call))
        for node in chain:
            # write_atomic(path, lambda fh: ...): the callback writes the temp file write_atomic renames
            if isinstance(node, ast.Lambda) and isinstance(parents.get(node), ast.Call) \
                    and _name(parents[node].func) == "write_atomic":
                return True
            # with atomic_target(path) as tmp: ... the writer fills the temp path atomic_target renames
            if isinstance(node, ast.With) and any(
                    isinstance(i.context_expr, ast.Call) and _name(i.context_expr.func) == "atomic_target"
                    for i in node.items):
                return True
        func = next((n for n in chain if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), tree)
        target = call.args[0] if call.args and _name(call.func) != "open" else call.func
        target = target.value if isinstance(target, ast.Attribute) else target
        # Into memory (a BytesIO), or a probe of a fresh temp name (cli.types' writability check)
        return isinstance(target, ast.Name) and bool(_assigned_from(func, target.id) & {"BytesIO", "temp_path"})

    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        what = _name(node.func)
        is_write = what in WRITERS or (what in MODULE_WRITERS and isinstance(node.func, ast.Attribute)) or (
            what == "open" and _writes_mode(node))
        if is_write and not guarded(node):
            bad.append(f"{name}:{node.lineno}: {ast.unparse(node)[:80]}")
    return bad


def test_the_scan_tells_atomic_from_bare_writes():
    src = ("def f(p, fig, arr):\n"
           "    p.write_text('x')\n"                                   # 2: bare
           "    open(p, 'w').write('x')\n"                             # 3: bare
           "    with p.open(mode='a') as fh: pass\n"                   # 4: bare
           "    fig.savefig(p)\n"                                      # 5: bare
           "    open(p).read(); open(p, 'rb').read()\n"                # reads: fine
           "    write_atomic(p, lambda fh: np.save(fh, arr))\n"
           "    with atomic_target(p) as tmp:\n"
           "        save_file({}, str(tmp))\n"
           "    buf = io.BytesIO(); fig.savefig(buf)\n"
           "    probe = temp_path(p); probe.open('xb').close()\n"
           "    json.dumps({}); np.save(p, arr)\n")                    # 12: bare np.save
    assert sorted(int(b.split(":")[1]) for b in unguarded_writes(src, "t")) == [2, 3, 4, 5, 12]


def test_every_file_pseval_writes_is_written_atomically():
    files = [p for p in sorted(SRC.rglob("*.py")) if p != SRC / "files.py"]  # files.py is the atomic writer
    assert len(files) > 50
    bad = [b for p in files for b in unguarded_writes(p.read_text(encoding="utf-8"), str(p.relative_to(REPO)))]
    assert not bad, "write these through pseval.files (write_atomic / atomic_target):\n" + "\n".join(bad)
