-- A frozen copy of schema version 1, as released: tests/test_store.py builds a version 1
-- database with it and checks that it migrates. Never edit it to follow schema.sql.

-- The tui-flow run store, schema version 1.
--
-- A tui-flow database carries PRAGMA application_id = 0x74756966 ("tuif") and
-- PRAGMA user_version = the schema version. Later versions add numbered migrations in
-- `sqlite.py` (MIGRATIONS) that take a database from version N to N + 1; this file always
-- describes the newest version and is only used to create a new, empty database.
--
-- Times are wall-clock seconds since the epoch. JSON columns hold plain JSON text.
-- A "segment" is one execution of a run: 0 for the first, 1 after the first in-place
-- resume, and so on. Attempts and log lines carry their segment so a resume keeps the
-- earlier ones.

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
    final_context   TEXT,                         -- JSON, when the run finished
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

-- `tasks` and `attempts` summarise a run. They are written when the run ends, or when
-- recovery finds it interrupted (from its events); while a run is live, read it through its
-- events (RunStore.load_run). An in-place resume keeps the rows of the tasks it reused.
CREATE TABLE tasks (
    run_id       TEXT NOT NULL,
    task_id      TEXT NOT NULL,
    position     INTEGER NOT NULL,          -- order in the run's task list
    parent       TEXT,                      -- for `task[3]` instances of a map_over task
    dependencies TEXT NOT NULL DEFAULT '[]', -- JSON list of task ids
    status       TEXT NOT NULL DEFAULT 'pending',   -- a task state, or interrupted
    attempts     INTEGER NOT NULL DEFAULT 0,
    started_at   REAL,
    finished_at  REAL,
    error        TEXT,
    traceback    TEXT,
    reason       TEXT,
    via_fallback INTEGER NOT NULL DEFAULT 0,
    segment      INTEGER NOT NULL DEFAULT 0, -- segment of the latest state
    reused       INTEGER NOT NULL DEFAULT 0, -- completed in an earlier run/segment, not re-run
    PRIMARY KEY (run_id, task_id)
) WITHOUT ROWID;

CREATE TABLE attempts (
    run_id      TEXT NOT NULL,
    task_id     TEXT NOT NULL,
    segment     INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    started_at  REAL,
    finished_at REAL,
    status      TEXT NOT NULL DEFAULT 'running', -- running | completed | failed | timed_out | cancelled | interrupted
    error       TEXT,
    traceback   TEXT,
    PRIMARY KEY (run_id, task_id, segment, attempt)
) WITHOUT ROWID;

CREATE TABLE logs (
    id      INTEGER PRIMARY KEY,
    run_id  TEXT NOT NULL,
    task_id TEXT NOT NULL,
    segment INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    at      REAL NOT NULL,
    level   TEXT NOT NULL,
    text    TEXT NOT NULL
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

-- Every event but task_logs (whose lines live in `logs`), as the engine emitted it: `data`
-- is the event model's JSON without fields at their default value (`kind` is its column).
-- `load_run` replays these through RunView, so a past run looks exactly like the live one.
CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    run_id  TEXT NOT NULL,
    segment INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    at      REAL NOT NULL,
    data    TEXT NOT NULL                   -- JSON of the event model
);
CREATE INDEX events_run ON events (run_id, segment, id);
