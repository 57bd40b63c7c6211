"""The bodies of taskinity_pipeline.dsl, as a Taskinity user writes them.

Each function takes what it needs by name: `<task>_result` is the return value of an upstream
task, any other parameter a value of the initial context (or its default).
"""

from taskinity import task


@task(name="Fetch data", description="Make `size` measurements")
def FetchData(size=100, seed=7):
    return [(i * 7919 + seed) % 1000 for i in range(size)]


@task(name="Clean even", description="Keep the even measurements")
def CleanEven(FetchData_result):
    return [x for x in FetchData_result if x % 2 == 0]


@task(name="Clean odd", description="Keep the odd measurements")
def CleanOdd(FetchData_result):
    return [x for x in FetchData_result if x % 2 == 1]


@task(name="Summarise")
def Summarise(CleanEven_result, CleanOdd_result):
    values = CleanEven_result + CleanOdd_result
    return {"count": len(values), "total": sum(values), "max": max(values, default=None)}


@task(name="Report")
def Report(Summarise_result):
    line = f"{Summarise_result['count']} measurements, total {Summarise_result['total']}"
    print(line)
    return line
