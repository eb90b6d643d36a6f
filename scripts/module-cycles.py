#!/usr/bin/env python3
"""Fails when the modules of a Rust crate import each other in a circle.

    scripts/module-cycles.py [CRATE_DIR ...]     # default: every workspace member

The module tree is read from `mod NAME;` declarations, starting at src/lib.rs (and src/main.rs
as a crate of its own). Every path that names an item of the crate (`crate::a::b`,
`super::x`, `self::y`, in `use` lines and in code) is a reference from the file it appears in
to the module it lands in. A module holds its children, so a reference between a module and
one of its own descendants is no edge; any other reference is lifted to the two children of
the modules' nearest common ancestor, and becomes an edge between those siblings. A cycle
among siblings (at any level of the tree) is reported with the references that make it, and
the script exits 1. Nothing is compiled; comments and string literals are skipped.
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def strip_code(text):
    """Removes comments, string and char literals (keeps line structure)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    out.append("\n" if text[i] == "\n" else "")
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + len(m.group(0)))
            end = n if end < 0 else end + 1 + len(m.group(1))
            out.append("\n" * text.count("\n", i, end) + '""')
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append("\n" * text.count("\n", i, j) + '""')
            i = j + 1
        elif c == "'" and re.match(r"'(\\.[^']*|[^\\'])'", text[i:i + 12]):
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            out.append("' '")
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


class Module:
    def __init__(self, path, file, parent):
        self.path = path  # tuple of names from the crate root
        self.file = file
        self.parent = parent
        self.children = {}
        self.inline = {}  # inline `mod x { ... }` names (same file)


def child_file(mod_file, name, is_dir_owner):
    base = os.path.dirname(mod_file) if is_dir_owner else os.path.splitext(mod_file)[0]
    for cand in (os.path.join(base, name + ".rs"), os.path.join(base, name, "mod.rs")):
        if os.path.exists(cand):
            return cand
    return None


MOD_DECL = re.compile(r"^\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+([A-Za-z_][A-Za-z0-9_]*)\s*(;|\{)", re.M)


def load_tree(root_file):
    modules = {}

    def visit(path, file, parent):
        m = Module(path, file, parent)
        modules[path] = m
        code = strip_code(open(file, encoding="utf-8").read())
        owner = os.path.basename(file) in ("lib.rs", "main.rs", "mod.rs")
        for name, kind in MOD_DECL.findall(code):
            if kind == "{":
                m.inline[name] = True
                continue
            f = child_file(file, name, owner)
            if f:
                m.children[name] = visit(path + (name,), f, m)
        m.code = code
        return m

    visit((), root_file, None)
    return modules


PATH = re.compile(r"\b(crate|super|self)((?:\s*::\s*[A-Za-z_][A-Za-z0-9_]*)+)")
USE = re.compile(r"\buse\s+((?:crate|super|self)\s*::[^;]*);", re.S)


def expand_use(tree):
    """`crate::a::{b, c::d}` -> ['crate::a::b', 'crate::a::c::d']."""
    tree = re.sub(r"\s+", "", tree)
    out = []

    def go(prefix, s):
        if "{" not in s:
            for part in s.split(","):
                if part:
                    out.append(prefix + part.split(" as ")[0])
            return
        i = s.index("{")
        head = s[:i]
        depth, j = 0, i
        while j < len(s):
            if s[j] == "{":
                depth += 1
            elif s[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        inner = s[i + 1:j]
        parts, depth, cur = [], 0, ""
        for ch in inner:
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
                continue
            depth += ch == "{"
            depth -= ch == "}"
            cur += ch
        parts.append(cur)
        for p in parts:
            if p in ("self", ""):
                out.append((prefix + head).rstrip(":"))
            else:
                go(prefix + head, p)

    go("", tree)
    return out


def resolve(modules, here, segs):
    """The module a path lands in (the deepest module it names), or None."""
    if not segs:
        return None
    first, rest = segs[0], segs[1:]
    if first == "crate":
        cur = modules[()]
    elif first == "self":
        cur = here
    else:  # super (possibly repeated)
        cur = here.parent
        while rest and rest[0] == "super" and cur is not None:
            cur, rest = cur.parent, rest[1:]
        if cur is None:
            return None
    for s in rest:
        if s in cur.children:
            cur = cur.children[s]
        else:
            break
    return cur


def references(modules):
    refs = []  # (from module, to module, text)
    for m in modules.values():
        paths = []
        for tree in USE.findall(m.code):
            paths.extend(expand_use(tree))
        code_wo_use = USE.sub("", m.code)
        for kw, tail in PATH.findall(code_wo_use):
            paths.append(kw + re.sub(r"\s+", "", tail))
        for p in paths:
            segs = [s for s in p.split("::") if s]
            target = resolve(modules, m, segs)
            if target is not None and target is not m:
                refs.append((m, target, p))
    return refs


def sibling_edge(a, b):
    """The pair of siblings under a's and b's nearest common ancestor, or None when one
    contains the other."""
    pa, pb = a.path, b.path
    k = 0
    while k < len(pa) and k < len(pb) and pa[k] == pb[k]:
        k += 1
    if k == len(pa) or k == len(pb):
        return None
    return pa[: k + 1], pb[: k + 1]


def cycles(nodes, edges):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
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
                out.append(sorted(comp))

    for v in nodes:
        if v not in index:
            strong(v)
    return out


def check_crate(crate_dir):
    name = os.path.relpath(crate_dir, ROOT)
    total = 0
    for root in ("src/lib.rs", "src/main.rs"):
        found = 0
        root_file = os.path.join(crate_dir, root)
        if not os.path.exists(root_file):
            continue
        modules = load_tree(root_file)
        edges, why = {}, {}
        for a, b, text in references(modules):
            e = sibling_edge(a, b)
            if e is None:
                continue
            edges.setdefault(e[0], set()).add(e[1])
            why.setdefault(e, []).append(f"{os.path.relpath(a.file, ROOT)}: {text}")
        nodes = set(edges) | {w for ws in edges.values() for w in ws}
        for comp in cycles(sorted(nodes), edges):
            found += 1
            names = ", ".join("::".join(c) for c in comp)
            print(f"{name} ({root}): modules in a circle: {names}")
            members = set(comp)
            for (x, y), texts in sorted(why.items()):
                if x in members and y in members:
                    print(f"  {'::'.join(x)} -> {'::'.join(y)}: {texts[0]}"
                          + (f" (+{len(texts) - 1} more)" if len(texts) > 1 else ""))
        print(f"{name} ({root}): {len(modules)} modules, "
              f"{sum(len(v) for v in edges.values())} sibling edges, "
              f"{'no' if not found else found} circle{'s' if found != 1 else ''}")
        total += found
    return total


def workspace_members():
    text = open(os.path.join(ROOT, "Cargo.toml"), encoding="utf-8").read()
    m = re.search(r"^members\s*=\s*\[([^\]]*)\]", text, re.M)
    return [os.path.join(ROOT, s) for s in re.findall(r'"([^"]+)"', m.group(1))]


def main():
    dirs = sys.argv[1:] or workspace_members()
    total = sum(check_crate(os.path.abspath(d)) for d in dirs)
    sys.exit(1 if total else 0)


if __name__ == "__main__":
    main()
