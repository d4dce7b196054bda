"""Fixtures of the attack suite: one AUTH=local app per module, its callback graph and router."""
from __future__ import annotations

import pytest

from tests.attacks.support import add_users, clean_env, create_app_for_test, private_data, signed_in
from tests.dashboard_generators import harvest_pages, router, server_callbacks, valid_body


@pytest.fixture(scope="module")
def app(tmp_path_factory, dashboard_data):
    root = tmp_path_factory.mktemp("attacks")
    with pytest.MonkeyPatch.context() as env:
        clean_env(env)
        private_data(env, root, dashboard_data["scored"], dashboard_data["models"])
        env.setenv("AUTH", "local")
        env.setenv("SECRET_KEY", "attack-secret-" + "z" * 32)
        env.setenv("LOGIN_MAX_FAILURES", "3")
        env.setenv("HOST", "127.0.0.1")
        add_users(root / "state")
        yield create_app_for_test()



@pytest.fixture(scope="module")
def graph(app):
    """The callback graph of the app and what its pages hold, harvested as the admin."""
    client = signed_in(app, "adam")
    found = server_callbacks(client)
    return found, harvest_pages(client, found)


@pytest.fixture(scope="module")
def callbacks(graph):
    """Every server callback with a valid body, by its output key."""
    found, harvest = graph
    return {cb["output"]: valid_body(cb, harvest) for cb in found}


@pytest.fixture(scope="module")
def route(graph):
    """The page router (the callback whose input is the location's pathname)."""
    return router(graph[0])


