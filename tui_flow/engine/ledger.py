"""The ledger: what each task sees of the context, who wrote what, and write conflicts.

- A task sees the initial context plus the writes of its ancestors, the later writer (in the
  workflow's order) winning (`visible_for`); a task with one dependency shares its view.
- Two tasks that may run in parallel (neither is an ancestor of the other) writing one key is
  a conflict naming both (`conflict`); so are two instances of one map_over task writing one
  key (`claim_instance_keys`).
- The final context is the initial one plus the writes of the completed tasks, in order.
- `Workflow(fan_in="merge")` (cloaca's semantics, which its compat module sets): parallel
  writes of one key are no conflict; where they meet they are merged (`merge_values`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConflictError
from ..workflow import Workflow


class Ledger:
    __slots__ = (
        "_ancestors",
        "any_writes",
        "initial",
        "instance_keys",
        "key_writers",
        "merge",
        "views",
        "wf",
        "writes",
    )

    def __init__(self, workflow: Workflow, initial: dict[str, Any]) -> None:
        self.wf = workflow
        self.merge = getattr(workflow, "fan_in", "error") == "merge"
        self.initial = initial
        self.writes: dict[str, dict[str, Any]] = {}  # task -> the keys it wrote
        self.key_writers: dict[str, list[str]] = {}  # key -> the tasks that wrote it
        self.views: dict[str, dict[str, Any]] = {}  # task -> what it sees (cached)
        self.any_writes = False
        self.instance_keys: dict[str, dict[str, str]] = {}  # map_over task -> key -> instance
        self._ancestors: dict[str, set[str]] = {}

    def ancestors(self, tid: str) -> set[str]:
        found = self._ancestors.get(tid)
        if found is None:
            found = self._ancestors[tid] = self.wf.ancestors(tid)
        return found

    def visible_for(self, tid: str) -> dict[str, Any]:
        """The initial context plus the writes of `tid`'s ancestors, latest writer winning."""
        cached = self.views.get(tid)
        if cached is not None:
            return cached
        deps = self.wf.tasks[tid].spec.dependencies
        if not self.any_writes or not deps:
            view = self.initial
        elif len(deps) == 1 and deps[0] in self.views:
            d = deps[0]
            w = self.writes.get(d)
            view = {**self.views[d], **w} if w else self.views[d]
        else:
            rank = self.wf.rank
            writers = sorted((rank[a], a) for a in self.ancestors(tid) if self.writes.get(a))
            view = self._combine([a for _, a in writers])
        self.views[tid] = view
        return view

    def _combine(self, writers: list[str]) -> dict[str, Any]:
        """The initial context plus the writes of `writers` (in the workflow's order): the
        later writer wins, or, merging, parallel writes of one key are merged."""
        view = dict(self.initial)
        if not self.merge:
            for a in writers:
                view.update(self.writes[a])
            return view
        by: dict[str, str] = {}  # key -> the writer of its value in `view`
        for a in writers:
            for key, value in self.writes[a].items():
                first = by.get(key)
                if first is not None and first not in self.ancestors(a):
                    value = merge_values(view[key], first, value, a)
                    a_wins = a > first
                    by[key] = a if a_wins else first
                else:
                    by[key] = a
                view[key] = value
        return view

    def conflict(self, owner: str, writes: Mapping[str, Any]) -> ConflictError | None:
        """A key of `writes` that a task which may run in parallel with `owner` wrote too."""
        if self.merge:
            return None
        for key in writes:
            for other in self.key_writers.get(key, ()):
                if other == owner:
                    continue
                if other in self.ancestors(owner) or owner in self.ancestors(other):
                    continue
                return ConflictError(key, other, owner)
        return None

    def claim_instance_keys(
        self, parent: str, instance: str, writes: Mapping[str, Any]
    ) -> ConflictError | None:
        """An instance of map_over task `parent` wrote `writes`: a key another instance wrote
        is a conflict; otherwise the keys are the instance's."""
        owners = self.instance_keys.setdefault(parent, {})
        for key in writes:
            other = owners.get(key)
            if other is not None and other != instance:
                return ConflictError(key, other, instance)
        for key in writes:
            owners[key] = instance
        return None

    def record(self, tid: str, writes: Mapping[str, Any]) -> None:
        """`tid` completed having written `writes` (its descendants will see them)."""
        if not writes:
            return
        self.writes[tid] = dict(writes)
        self.any_writes = True
        for key in writes:
            self.key_writers.setdefault(key, []).append(tid)

    def final(self, state: Mapping[str, str]) -> dict[str, Any]:
        """The context at the end: the initial one plus every completed task's writes."""
        return self._combine(
            [t for t in self.wf.order if state[t] == "completed" and t in self.writes]
        )


def merge_values(old: Any, old_writer: str, new: Any, new_writer: str) -> Any:
    """Cloaca's fan-in merge of one key written by two parallel tasks: lists are concatenated
    without duplicates, dicts merged key by key, other values: the last in task-name order."""
    if new_writer < old_writer:
        old, new = new, old
    if isinstance(old, list) and isinstance(new, list):
        return old + [v for v in new if v not in old]
    if isinstance(old, dict) and isinstance(new, dict):
        return {**old, **new}
    return new
