"""The app's panels: task tree, details, logs, retries, timeline, report, history."""
