"""The brainscan stack as local processes, the non-container counterpart of docker-compose.yml.

`processes` (one child per process group, started when healthy, stopped as a group),
`mlflow_server` (a real MLflow server on a free port), `stack` (model-sync, inference and the
gateway wired together) and `demo` (`make demo`: the pipeline, then the stack serving it).
"""
