# A flow written for Taskinity, run unchanged by tui-flow: the tasks are declared only by the
# edges that name them; the bodies are the functions of taskinity_pipeline.py, written with
# `from taskinity import task` (upstream results arrive as <task>_result arguments).
#
#     tui-flow run flows/taskinity_pipeline.dsl --set size=1000

flow TaskinityPipeline:
    description: "Fetch, clean and summarise measurements (Taskinity style)"

    FetchData -> [CleanEven, CleanOdd] -> Summarise -> Report
