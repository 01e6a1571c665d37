"""Request dependencies: none of them costs a worker-thread hop."""

import inspect

import pytest
from brainscan_gateway.api.routes import docs, health, metrics, model, page, predictions
from fastapi.routing import APIRoute


def dependency_calls(dependant):
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from dependency_calls(dependency)


@pytest.mark.parametrize("module", [predictions, model, health, metrics, page, docs])
def test_every_route_dependency_runs_on_the_event_loop(module):
    # FastAPI runs a plain `def` dependency in a worker thread: a thread hop per request for a
    # few microseconds of work, competing for the threads pixel work needs.
    for route in module.router.routes:
        assert isinstance(route, APIRoute)
        for call in dependency_calls(route.dependant):
            function = call if inspect.isfunction(call) else type(call).__call__
            assert inspect.iscoroutinefunction(function), f"{route.path}: {call} is not async"


def test_the_prediction_route_is_checked():
    (route,) = predictions.router.routes
    assert len(list(dependency_calls(route.dependant))) >= 3
