"""Progress: which tasks may run, given which have ended. No asyncio and no events: the
scheduler asks, then does what follows (emits the states, hands tasks to lanes).

In the manner of `graphlib`: `roots()` are the tasks decided at the start; `ended(tid)`, once a
task reached its final state, gives the dependents whose dependencies are now all final;
`verdict(tid)` applies a task's trigger rule to them (None: it runs; else why it is skipped).
A skipped or cancelled task ends too, so skips spread by the same two calls.

A map_over task runs as a group of instances: `expand()` registers them, `instance_ended()`
says when the last one has ended, `group_outcome()` how the group ended.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..workflow import Workflow
from .events import FINAL_STATES


class Progress:
    __slots__ = ("children", "deps_left", "done", "group_left", "groups", "state", "total", "wf")

    def __init__(self, workflow: Workflow) -> None:
        self.wf = workflow
        order = workflow.order
        self.state: dict[str, str] = dict.fromkeys(order, "pending")  # instances too, later
        self.deps_left = {tid: len(workflow.tasks[tid].spec.dependencies) for tid in order}
        self.children = workflow.children  # shared with the workflow: read only
        self.done = 0  # tasks (not instances) in a final state
        self.total = len(order)
        self.groups: dict[str, list[str]] = {}  # map_over task -> its instances
        self.group_left: dict[str, int] = {}  # map_over task -> instances not ended yet

    @property
    def finished(self) -> bool:
        """Every task has reached a final state: the run is over."""
        return self.done == self.total

    def roots(self) -> list[str]:
        """The tasks without dependencies that are still pending, in order."""
        tasks, state = self.wf.tasks, self.state
        return [
            t for t in self.wf.order if state[t] == "pending" and not tasks[t].spec.dependencies
        ]

    def ended(self, tid: str) -> list[str]:
        """Task `tid` reached a final state: count it, and give its dependents whose
        dependencies are now all final and that are still pending, in order."""
        self.done += 1
        deps_left, state = self.deps_left, self.state
        out = []
        for child in self.children[tid]:
            deps_left[child] -= 1
            if deps_left[child] == 0 and state[child] == "pending":
                out.append(child)
        return out

    def verdict(self, tid: str) -> str | None:
        """`tid`'s trigger rule, its dependencies being final: None if it runs, else why not.

        all_success: every dependency completed; all_done: always; one_failed: at least one
        failed; none_failed: none failed or was cancelled (skipped ones are fine)."""
        spec = self.wf.tasks[tid].spec
        state = self.state
        rule = spec.trigger_rule
        if rule == "all_success":
            bad = [d for d in spec.dependencies if state[d] != "completed"]
            return f"upstream {bad[0]!r} {state[bad[0]]}" if bad else None
        if rule == "all_done":
            return None
        failed = [d for d in spec.dependencies if state[d] == "failed"]
        if rule == "one_failed":
            return None if failed else "no upstream task failed"
        blocker = failed or [d for d in spec.dependencies if state[d] == "cancelled"]
        return f"upstream {blocker[0]!r} {state[blocker[0]]}" if blocker else None

    def expand(self, tid: str, instances: Iterable[str]) -> None:
        """Map_over task `tid` runs as these instances (each pending)."""
        ids = self.groups[tid] = list(instances)
        self.group_left[tid] = len(ids)
        for uid in ids:
            self.state[uid] = "pending"

    def instance_ended(self, parent: str) -> bool:
        """An instance of `parent` reached its final state: True when it was the last one
        (and `parent` itself is not final yet): the group is complete."""
        self.group_left[parent] -= 1
        return self.group_left[parent] == 0 and self.state[parent] not in FINAL_STATES

    def group_outcome(self, tid: str) -> tuple[str, list[str]]:
        """How map_over task `tid` ended, from its instances: ("completed", []), ("cancelled",
        the instances) when every one that did not complete was cancelled, else ("failed",
        those that did not complete, a failed one first)."""
        state = self.state
        bad = [u for u in self.groups.get(tid, ()) if state[u] != "completed"]
        if not bad:
            return "completed", []
        if all(state[u] == "cancelled" for u in bad):
            return "cancelled", bad
        bad.sort(key=lambda u: state[u] != "failed")  # stable: the first failed one first
        return "failed", bad

    def status(self, *, cancelled: bool) -> str:
        """The run's status once it is over: cancelled if asked, failed if a task failed,
        cancelled if one was, else completed."""
        if cancelled:
            return "cancelled"
        states = {self.state[t] for t in self.wf.order}
        if "failed" in states:
            return "failed"
        if "cancelled" in states:
            return "cancelled"
        return "completed"
