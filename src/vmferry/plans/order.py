"""Boot order from the dependency graph: groups of components that can start together.

A component starts after every component it depends on. Strongly connected components (cycles)
are found with Tarjan's algorithm, reported, and started as one group at the point where all their
outside dependencies are up.
"""

from __future__ import annotations

from collections.abc import Iterable


def _sccs(nodes: list[str], edges: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0

    def visit(root: str) -> None:  # iterative Tarjan, no recursion limit
        nonlocal counter
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    group.append(top)
                    if top == node:
                        break
                out.append(sorted(group))

    for n in nodes:
        if n not in index:
            visit(n)
    return out


def boot_order(components: Iterable[str], depends_on: Iterable[tuple[str, str]]) -> tuple[list[list[str]], list[list[str]]]:
    """``(groups, cycles)``: groups in start order; ``depends_on`` holds (component, what it needs)."""
    nodes = sorted(set(components))
    edges: dict[str, set[str]] = {n: set() for n in nodes}
    for src, dst in depends_on:
        if src in edges and dst in edges:
            edges[src].add(dst)
    sccs = _sccs(nodes, edges)
    cycles = [g for g in sccs if len(g) > 1 or g[0] in edges[g[0]]]
    owner = {n: i for i, g in enumerate(sccs) for n in g}
    needs = {i: {owner[d] for n in g for d in edges[n]} - {i} for i, g in enumerate(sccs)}
    level: dict[int, int] = {}

    def depth(i: int) -> int:  # the condensation is acyclic; Tarjan emits dependencies first
        return level[i]

    for i in range(len(sccs)):
        level[i] = 1 + max((depth(j) for j in needs[i]), default=-1)
    groups: dict[int, list[str]] = {}
    for i, g in enumerate(sccs):
        groups.setdefault(level[i], []).extend(g)
    return [sorted(groups[k]) for k in sorted(groups)], cycles
