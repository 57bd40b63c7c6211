-- The tui-flow run store, schema version 5.
--
-- A tui-flow database carries PRAGMA application_id = 0x74756966 ("tuif") and
-- PRAGMA user_version = the schema version. Later versions add numbered migrations in
-- `schema.py` (MIGRATIONS) that take a database from version N to N + 1; this file always
-- describes the newest version and is only used to create a new, empty database.
--
-- Times are wall-clock seconds since the epoch. JSON columns hold plain JSON text.
-- A "segment" is one execution of a run: 0 for the first, 1 after the first in-place
-- resume, and so on. Events, log lines and context writes carry their segment so a resume
-- keeps the earlier ones.
--
-- The events are the record: each task's status, attempts, times and errors are derived
-- from them on read (RunStore.task_rows / attempt_rows / load_run replay them through the
-- engine's RunView), so nothing but the events is written while a run goes on. The
-- task_status view below gives each task's latest recorded state to plain SQL.
--
-- Each value is stored once: a task's written values are `context_writes` rows only (its
-- context_written event keeps the keys), and the final context is `runs.final_context`
-- only when it is not the initial context plus the completed tasks' writes in run order
-- (NULL otherwise: the reader derives it; the run_finished event keeps no context).

CREATE TABLE runs (
    run_id          TEXT PRIMARY KEY,
    workflow        TEXT NOT NULL,
    file            TEXT,
    source_hash     TEXT,
    status          TEXT NOT NULL,          -- running | completed | failed | cancelled | interrupted
    started_at      REAL NOT NULL,          -- start of the first segment
    resumed_at      REAL,                   -- start of the latest segment (in-place resume)
    finished_at     REAL,
    last_event_at   REAL,                   -- time of the newest recorded event
    max_concurrency INTEGER NOT NULL,
    executor        TEXT NOT NULL DEFAULT 'local',
    options         TEXT NOT NULL DEFAULT '{}',   -- JSON
    initial_context TEXT NOT NULL DEFAULT '{}',   -- JSON
    final_context   TEXT,                         -- JSON; NULL: derived (see above)
    report          TEXT,                         -- JSON: Report.summary(), when it finished
    wall_s          REAL,
    speedup         REAL,
    n_tasks         INTEGER NOT NULL DEFAULT 0,   -- top-level tasks
    failed          INTEGER NOT NULL DEFAULT 0,   -- top-level tasks that failed
    error           TEXT,
    resumed_from    TEXT,                   -- the run this one re-runs (NULL unless a rerun)
    segments        INTEGER NOT NULL DEFAULT 1,
    owner_host      TEXT,                   -- the process recording the run
    owner_pid       INTEGER,
    owner_token     TEXT                    -- boot id + process start time (guards pid reuse)
);
CREATE INDEX runs_started ON runs (started_at);
CREATE INDEX runs_status ON runs (status);
CREATE INDEX runs_workflow ON runs (workflow, started_at);

CREATE TABLE logs (
    id      INTEGER PRIMARY KEY,
    run_id  TEXT NOT NULL,
    task_id TEXT NOT NULL,
    segment INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    at      REAL NOT NULL,
    level   TEXT NOT NULL,
    text    TEXT NOT NULL,
    logger  TEXT,                           -- the `logging` logger's name (NULL: print, root)
    extra   TEXT                            -- JSON: the record's extra= fields (NULL: none)
);
CREATE INDEX logs_task ON logs (run_id, task_id, id);

CREATE TABLE context_writes (
    run_id  TEXT NOT NULL,
    task_id TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,                  -- JSON
    segment INTEGER NOT NULL,
    at      REAL NOT NULL,
    PRIMARY KEY (run_id, task_id, key)
) WITHOUT ROWID;

-- Every event but task_logs (whose lines live in `logs`), in the order the engine emitted
-- it (`id`). A task_state event - two or more per task, most of what a run writes - is
-- kept in columns: task_id, state, attempt, and in `data` only its other fields that are
-- not at their default (max_attempts, error, traceback, reason, via_fallback; '{}' when
-- none). Any other kind keeps its event model's JSON in `data` (without the fields at their
-- default; `kind` is its column) and its task_id, if it has one, in the column; but
-- context_written keeps {"task_id", "keys"} (values: context_writes) and run_finished no
-- context (runs.final_context).
-- `load_run` replays these through RunView, so a past run looks exactly like the live one.
CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    run_id  TEXT NOT NULL,
    segment INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    at      REAL NOT NULL,
    task_id TEXT,
    state   TEXT,                           -- task_state only
    attempt INTEGER,                        -- task_state only
    data    TEXT NOT NULL                   -- JSON (see above)
);
CREATE INDEX events_run ON events (run_id, segment, id);

-- Each task's latest recorded state (for plain SQL; tui-flow itself replays the events).
-- A run whose process died shows the tasks it had running as "running" here; `runs.status`
-- says "interrupted".
CREATE VIEW task_status AS
SELECT run_id, task_id, segment, state AS status, attempt, at AS updated_at,
    max(id) AS event_id
FROM events WHERE kind = 'task_state' GROUP BY run_id, task_id;
