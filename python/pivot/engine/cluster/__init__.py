"""Running stages on a Dask cluster that shares nothing with this machine but the remote.

`executor.DaskExecutor` (coordinator side) is what the runner submits stages to instead of its
process pool; `task.run_task` is the Dask task that runs one stage on a worker;
`stage` holds the processes in which a worker runs stages with the local worker code;
`snapshot` carries the project's code to the workers (docs/cluster.md, docs/architecture.md
"The Dask executor").
"""
