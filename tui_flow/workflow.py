"""`Workflow`: a named set of tasks, their dependency graph, and its validation.

Building a Workflow validates it and reports every problem at once (cycles with their path,
unknown dependencies with suggestions, duplicate ids, self-dependencies, bad signatures), each
located at the file and line of the offending `@task`.
"""

from __future__ import annotations

import difflib
import heapq
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from .errors import Problem, ValidationError
from .tasks import Task, source_of

_PACKAGE_DIR = Path(__file__).resolve().parent


class Workflow:
    """A named DAG of tasks.

    `Workflow("catalog", tasks=[generate_data, partition_data], max_concurrency=4)`

    `fan_in`: what happens when tasks that may run in parallel write one key: "error" (a
    ConflictError naming both, the default) or "merge" (cloaca's fan-in: lists concatenated
    without duplicates, dicts merged key by key, other values: the last in task-name order).
    """

    def __init__(
        self,
        name: str,
        tasks: Iterable[Task] = (),
        *,
        max_concurrency: int = 4,
        description: str | None = None,
        fan_in: Literal["error", "merge"] = "error",
    ) -> None:
        frame = inspect.currentframe()
        caller = frame.f_back if frame else None
        self.line: int | None = caller.f_lineno if caller else None
        self.defined_in: str | None = caller.f_code.co_filename if caller else None
        del frame, caller
        if not isinstance(name, str) or not name.strip():
            raise ValidationError([self._here("a workflow needs a non-empty name")])
        self.name = name
        self.description = description
        self.max_concurrency = max_concurrency
        self.fan_in = fan_in
        self.tags: dict[str, str] = {}
        # declarations the file made that tui-flow loads but does not act on (cloaca's cron
        # schedules, poll triggers...): `validate` lists them as "not scheduled by tui-flow"
        self.not_scheduled: list[str] = []
        self.file: str | None = None  # set by the loader: the file the workflow came from
        self.source_hash: str | None = None  # set by the loader: hash of the file's source

        task_list = list(tasks)
        problems: list[Problem] = []
        if fan_in not in ("error", "merge"):
            problems.append(self._here(f"fan_in must be 'error' or 'merge', not {fan_in!r}"))
        if not isinstance(max_concurrency, int) or isinstance(max_concurrency, bool):
            problems.append(
                self._here(f"max_concurrency must be an integer, not {max_concurrency!r}")
            )
        elif max_concurrency < 1:
            problems.append(
                self._here(f"max_concurrency must be at least 1, not {max_concurrency}")
            )

        self.tasks: dict[str, Task] = {}
        for t in task_list:
            if not isinstance(t, Task):
                what = getattr(t, "__name__", repr(t))
                message = f"{what} is not a task: decorate it with @task"
                file, line = source_of(t)
                problems.append(Problem(message, file, line) if file else self._here(message))
                continue
            if t.id in self.tasks:
                first = self.tasks[t.id]
                if first is t:
                    continue  # the same task listed twice is harmless
                problems.append(
                    Problem(
                        f"duplicate task id {t.id!r} (first defined at "
                        f"{first.source_file}:{first.source_line})",
                        t.source_file,
                        t.source_line,
                        t.id,
                    )
                )
                continue
            self.tasks[t.id] = t

        problems += _graph_problems(self.tasks)
        if not problems:
            problems += self._condition_problems()
        if problems:
            raise ValidationError(problems, workflow=name)

    def _condition_problems(self) -> list[Problem]:
        """A `run_if` may read the state of the task's ancestors only (the others may not have
        ended when it is decided)."""
        problems = []
        for t in self.tasks.values():
            cond = t.spec.run_if
            if cond is None or not cond.tasks():
                continue
            ancestors = self.ancestors(t.id)
            for name in sorted(cond.tasks() - ancestors):
                if name in self.tasks:
                    why = "which is not upstream of it: add it to its dependencies"
                else:
                    close = difflib.get_close_matches(name, list(self.tasks), n=1)
                    why = "which is not a task" + (
                        f" (did you mean {close[0]!r}?)" if close else ""
                    )
                problems.append(
                    Problem(
                        f"task {t.id!r}: run_if reads the state of {name!r}, {why}",
                        t.source_file,
                        t.source_line,
                        t.id,
                    )
                )
        return problems

    def _here(self, message: str) -> Problem:
        """A problem located at the `Workflow(...)` call (unless tui-flow itself made the call)."""
        inside = self.defined_in is not None and Path(self.defined_in).parent == _PACKAGE_DIR
        if self.defined_in is None or inside:
            return Problem(message)
        return Problem(message, self.defined_in, self.line)

    # -- derived views -------------------------------------------------------------------------

    @cached_property
    def order(self) -> list[str]:
        """Task ids in a stable topological order (ties broken by name)."""
        return stable_topological_order({t: s.spec.dependencies for t, s in self.tasks.items()})

    @cached_property
    def rank(self) -> dict[str, int]:
        """Each task's index in `order`."""
        return {tid: i for i, tid in enumerate(self.order)}

    @cached_property
    def children(self) -> dict[str, list[str]]:
        """Each task's dependents, in `order` (kept: read it, do not change it)."""
        rank = self.rank
        out: dict[str, list[str]] = {tid: [] for tid in self.order}
        for tid in self.order:
            for dep in self.tasks[tid].spec.dependencies:
                out[dep].append(tid)
        for kids in out.values():
            kids.sort(key=rank.__getitem__)
        return out

    @cached_property
    def runners(self) -> dict[str, int]:
        """How many tasks run where: {"async": n, "thread": n, "process": n} (those present)."""
        out: dict[str, int] = {}
        for t in self.tasks.values():
            out[t.runner] = out.get(t.runner, 0) + 1
        return out

    @cached_property
    def stages(self) -> list[list[str]]:
        """Topological generations: tasks in one stage do not depend on each other (a task's
        stage is one more than its latest dependency's)."""
        level: dict[str, int] = {}
        for tid in self.order:
            deps = self.tasks[tid].spec.dependencies
            level[tid] = 1 + max((level[d] for d in deps), default=-1)
        out: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
        for tid, n in level.items():
            out[n].append(tid)
        return [sorted(stage) for stage in out]

    @cached_property
    def graph(self) -> Any:
        """The graph as a networkx DiGraph (an edge from each dependency to its dependent), for
        those who want networkx's algorithms; built, and networkx imported, on first use."""
        import networkx as nx  # type: ignore[import-untyped]

        g = nx.DiGraph()
        g.add_nodes_from(self.tasks)
        g.add_edges_from((d, t) for t in self.tasks for d in self.tasks[t].spec.dependencies)
        return g

    def dependencies(self, task_id: str) -> tuple[str, ...]:
        return self.tasks[task_id].spec.dependencies

    def dependents(self, task_id: str) -> list[str]:
        return sorted(self.children[task_id])

    def ancestors(self, task_id: str) -> set[str]:
        """Every task `task_id` depends on, directly or not."""
        return _reach(task_id, lambda t: self.tasks[t].spec.dependencies)

    def descendants(self, task_id: str) -> set[str]:
        """Every task that depends on `task_id`, directly or not."""
        return _reach(task_id, self.children.__getitem__)

    def longest_path(self, durations: Mapping[str, float]) -> tuple[list[str], float]:
        """The path through the graph with the largest sum of `durations` (missing = 0)."""
        deps = {t: self.tasks[t].spec.dependencies for t in self.order}
        return longest_path(deps, durations, self.order)

    def __iter__(self):
        return iter(self.tasks.values())

    def __len__(self) -> int:
        return len(self.tasks)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.tasks

    def __repr__(self) -> str:
        return f"<Workflow {self.name!r}: {len(self.tasks)} tasks>"


def _reach(start: str, step: Callable[[str], Iterable[str]]) -> set[str]:
    """The nodes reached from `start` (itself excepted) following `step`."""
    seen: set[str] = set()
    todo = list(step(start))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(step(node))
    return seen


def _graph_problems(tasks: Mapping[str, Task]) -> list[Problem]:
    problems: list[Problem] = []
    ids = list(tasks)
    edges: dict[str, dict[str, None]] = {tid: {} for tid in ids}  # dependency -> dependents
    for t in tasks.values():
        where = (t.source_file, t.source_line, t.id)
        if t.signature_problem:
            problems.append(Problem(f"task {t.id!r}: function {t.signature_problem}", *where))
        for dep in t.spec.dependencies:
            if dep == t.id:
                problems.append(Problem(f"task {t.id!r} depends on itself", *where))
            elif dep not in tasks:
                close = difflib.get_close_matches(dep, ids, n=3)
                hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
                if not close and ids:
                    hint = f"; known tasks: {', '.join(sorted(ids)[:12])}"
                problems.append(
                    Problem(f"task {t.id!r} depends on unknown task {dep!r}{hint}", *where)
                )
            else:
                edges[dep][t.id] = None
        if t.spec.map_over is not None and not t.spec.map_over.strip():
            problems.append(Problem(f"task {t.id!r}: map_over needs a context key", *where))
    for path in _cycles(ids, edges):
        first = tasks[path[0]]
        problems.append(
            Problem(
                "dependency cycle: " + " -> ".join(path),
                first.source_file,
                first.source_line,
                first.id,
            )
        )
    return problems


def _cycles(ids: list[str], edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle per group of tasks that depend on each other in a circle (a strongly
    connected component of two or more), each a path from its earliest task back to it."""
    index = {tid: i for i, tid in enumerate(ids)}
    found = []
    for component in _strongly_connected(ids, edges):
        if len(component) > 1:
            start = min(component, key=index.__getitem__)
            found.append((index[start], _path_back(start, component, edges)))
    return [path for _, path in sorted(found)]


def _path_back(start: str, within: set[str], edges: Mapping[str, Iterable[str]]) -> list[str]:
    """A path from `start` back to it through `within` (depth first, edges in order)."""
    path = [start]
    seen = {start}
    stack = [iter(edges[start])]
    while stack:
        for nxt in stack[-1]:
            if nxt == start:
                return [*path, start]
            if nxt in within and nxt not in seen:
                seen.add(nxt)
                path.append(nxt)
                stack.append(iter(edges[nxt]))
                break
        else:
            stack.pop()
            path.pop()
    raise AssertionError(f"{start!r} is on no cycle")  # (a component of two or more has one)


def _strongly_connected(ids: list[str], edges: Mapping[str, Iterable[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components, without recursion (a long chain is fine)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[set[str]] = []
    for root in ids:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(edges[root]))]
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    out.append(component)
    return out


def longest_path(
    dependencies: Mapping[str, Sequence[str]],
    durations: Mapping[str, float],
    order: Sequence[str] | None = None,
) -> tuple[list[str], float]:
    """Longest duration-weighted path. Unknown dependencies are ignored.

    Between equally long ways in, the dependency that took longer itself wins, then the earlier
    id: a skipped task (no duration) never stands on the path in place of one that ran."""
    if order is None:
        order = stable_topological_order(dependencies)
    best: dict[str, float] = {}
    prev: dict[str, str | None] = {}
    for node in order:
        if node not in dependencies:
            continue
        top: tuple[float, float] = (0.0, 0.0)
        via: str | None = None
        for p in dependencies[node]:
            if p not in best:
                continue
            key = (best[p], durations.get(p, 0.0))
            if via is None or key > top or (key == top and p < via):
                top, via = key, p
        best[node] = top[0] + durations.get(node, 0.0)
        prev[node] = via
    if not best:
        return [], 0.0
    end = min(best, key=lambda n: (-best[n], n))
    path: list[str] = []
    cur: str | None = end
    while cur is not None:
        path.append(cur)
        cur = prev[cur]
    path.reverse()
    return path, best[end]


def stable_topological_order(dependencies: Mapping[str, Sequence[str]]) -> list[str]:
    """Topological order, ready nodes taken by name. Unknown dependencies are ignored."""
    remaining: dict[str, int] = {}
    children: dict[str, list[str]] = {k: [] for k in dependencies}
    for k, deps in dependencies.items():
        n = 0
        for d in deps:
            if d in children:
                children[d].append(k)
                n += 1
        remaining[k] = n
    ready = [k for k, n in remaining.items() if n == 0]
    heapq.heapify(ready)
    out: list[str] = []
    while ready:
        node = heapq.heappop(ready)
        out.append(node)
        for c in children[node]:
            remaining[c] -= 1
            if remaining[c] == 0:
                heapq.heappush(ready, c)
    return out
