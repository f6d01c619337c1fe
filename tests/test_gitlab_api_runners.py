"""The GitLab API double's runner and token endpoints (harness/gitlab_api.py) behave as GitLab's REST
API v4 does where CML 0.20.6 and the template's runner scripts can tell: the new runner flow (no
registration token; POST /user/runners by a Maintainer; never contacted until the runner verifies its
token), who sees and manages runners, and GitLab's filters and paging."""

import json
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest

from harness.gitlab_api import GitLabApi

MAINTAINER, DEVELOPER, READER, CREATOR = "glpat-maintainer-1", "glpat-developer-2", "glpat-reader-3", "glpat-creator-4"
USERS = {
    MAINTAINER: {"id": 10, "username": "project_4242_bot", "access_level": 40},
    DEVELOPER: {"id": 11, "username": "dev"},
    READER: {"id": 12, "username": "reader", "access_level": 40, "scopes": ["read_api"]},
    CREATOR: {"id": 13, "username": "creator", "access_level": 50, "scopes": ["create_runner"]},
}


@pytest.fixture
def api():
    with GitLabApi("4242", "ml/demo", USERS) as api:
        yield api


def call(api, method, path, token=MAINTAINER, form=None, json_body=None):
    """(status, decoded body, headers) of one request; form-encoded as CML sends, or JSON."""
    headers, data = {"PRIVATE-TOKEN": token} if token else {}, None
    if form is not None:
        headers["Content-Type"], data = "application/x-www-form-urlencoded", urlencode(form).encode()
    if json_body is not None:
        headers["Content-Type"], data = "application/json", json.dumps(json_body).encode()
    try:
        with urlopen(Request(api.api_url + path, data, headers, method=method), timeout=10) as response:
            body = response.read()
            return response.status, json.loads(body) if body else None, response.headers
    except HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), error.headers


def register(api, token=MAINTAINER, **fields):
    return call(api, "POST", "/user/runners", token, {"runner_type": "project_type", "project_id": 4242, **fields})


def test_the_token_and_the_project_tell_scopes_role_and_the_new_runner_flow(api):
    assert call(api, "GET", "/personal_access_tokens/self")[1]["scopes"] == ["api", "write_repository"]
    assert call(api, "GET", "/personal_access_tokens/self", READER)[1]["scopes"] == ["read_api"]
    assert call(api, "GET", "/version")[1]["version"] == "17.5.0"

    status, maintainer, _ = call(api, "GET", "/projects/ml%2Fdemo")
    _, developer, _ = call(api, "GET", "/projects/4242", DEVELOPER)

    assert (status, maintainer["id"], maintainer["path_with_namespace"]) == (200, 4242, "ml/demo")
    assert maintainer["permissions"]["project_access"]["access_level"] == 40
    assert maintainer["permissions"]["group_access"] is None
    assert maintainer["runners_token"] is None  # shown to Maintainers; null: the new runner flow
    assert developer["permissions"]["project_access"]["access_level"] == 30
    assert "runners_token" not in developer  # GitLab hides the key from Developers


def test_a_maintainers_runner_is_never_contacted_until_its_runner_verifies_the_token(api):
    status, created, _ = register(
        api, description="vm", tag_list="cml-77, gpu", run_untagged="false", locked="true", access_level="ref_protected"
    )

    assert status == 201
    assert set(created) == {"id", "token", "token_expires_at"}
    assert created["token"].startswith("glrt-") and created["token_expires_at"] is None
    details = call(api, "GET", f"/runners/{created['id']}")[1]
    assert (details["status"], details["online"], details["contacted_at"]) == ("never_contacted", False, None)
    assert (details["description"], details["tag_list"], details["run_untagged"]) == ("vm", ["cml-77", "gpu"], False)
    assert (details["locked"], details["access_level"], details["runner_type"]) == (
        True,
        "ref_protected",
        "project_type",
    )
    assert [project["path_with_namespace"] for project in details["projects"]] == ["ml/demo"]

    assert call(api, "POST", "/runners/verify", None, {"token": "glrt-unknown"})[0] == 403
    verified = call(api, "POST", "/runners/verify", None, json_body={"token": created["token"], "system_id": "s_1"})

    assert verified[:2] == (200, {"id": created["id"], "token": created["token"], "token_expires_at": None})
    details = call(api, "GET", f"/runners/{created['id']}")[1]
    assert (details["status"], details["online"], details["ip_address"]) == ("online", True, "127.0.0.1")
    assert details["contacted_at"]


@pytest.mark.parametrize(
    ("token", "fields", "status", "body"),
    [
        (DEVELOPER, {}, 403, {"message": "403 Forbidden"}),
        (READER, {}, 403, {"error": "insufficient_scope"}),
        (CREATOR, {}, 201, {}),  # the narrow scope GitLab made for this
        (MAINTAINER, {"runner_type": "instance_type"}, 403, {"message": "403 Forbidden"}),
        (MAINTAINER, {"runner_type": "fast"}, 400, {"error": "runner_type is missing, runner_type does not have a"}),
        (MAINTAINER, {"access_level": "protected"}, 400, {"error": "access_level does not have a valid value"}),
        (MAINTAINER, {"run_untagged": "maybe"}, 400, {"error": "run_untagged is invalid"}),
        (MAINTAINER, {"project_id": 1}, 404, {"message": "404 Project Not Found"}),
    ],
)
def test_creating_a_runner_needs_a_maintainer_with_a_runner_scope(api, token, fields, status, body):
    answer, created, _ = register(api, token, **fields)

    assert answer == status
    assert all(str(created[key]).startswith(value) for key, value in body.items()), created
    assert len(api.runners()) == (1 if status == 201 else 0)


def test_runner_lists_filter_and_page_as_gitlab_does(api):
    a = api.add_runner("a", ("cml-1", "gpu"), status="online")
    api.add_runner("b", ("cml-1",), status="offline", paused=True)
    api.add_runner("c", ("cml-2",))
    shared = api.add_runner("shared", ("docker",), status="online", runner_type="instance_type")

    def listed(path, token=MAINTAINER):
        status, runners, headers = call(api, "GET", path, token)
        assert status == 200, runners
        return [runner["description"] for runner in runners], headers

    assert listed("/runners")[0] == ["a", "b", "c"]  # the user's own: no instance runners
    assert listed("/runners?tag_list=cml-1,gpu")[0] == ["a"]
    assert listed("/runners?tag_list=cml-1")[0] == ["a", "b"]
    assert listed("/runners?status=online")[0] == ["a"]
    assert listed("/runners?status=never_contacted")[0] == ["c"]
    assert listed("/runners?paused=true")[0] == ["b"]
    assert listed("/runners?type=instance_type")[0] == []
    assert listed("/projects/4242/runners")[0] == ["a", "b", "c", "shared"]
    assert listed("/projects/ml%2Fdemo/runners?type=instance_type&status=online")[0] == ["shared"]
    page, headers = listed("/runners?per_page=2&page=2")
    assert (page, headers["X-Total"], headers["X-Total-Pages"], headers["X-Next-Page"]) == (["c"], "3", "2", "")
    assert call(api, "GET", "/runners")[1][0] == {  # exactly GitLab's fields
        "id": a["id"],
        "description": "a",
        "ip_address": "127.0.0.1",
        "active": True,
        "paused": False,
        "is_shared": False,
        "runner_type": "project_type",
        "name": None,
        "online": True,
        "status": "online",
    }
    assert call(api, "GET", "/runners?status=busy")[:2] == (400, {"error": "status does not have a valid value"})
    assert call(api, "GET", "/runners?type=shared")[0] == 400

    assert listed("/runners", DEVELOPER)[0] == []  # a Developer owns no runners
    assert call(api, "GET", "/projects/4242/runners", DEVELOPER)[0] == 403
    assert call(api, "GET", f"/runners/{a['id']}", DEVELOPER)[0] == 403
    assert call(api, "GET", f"/runners/{shared['id']}", DEVELOPER)[1]["is_shared"] is True  # instance runners: anyone


def test_a_runner_is_updated_listed_with_its_jobs_and_deleted(api):
    runner = api.add_runner("vm", ("cml-77",), status="online", jobs=({"id": 5, "status": "running"},))
    path = f"/runners/{runner['id']}"

    assert call(api, "PUT", path, DEVELOPER, {"run_untagged": "false"})[0] == 403
    status, updated, _ = call(api, "PUT", path, form={"run_untagged": "false", "tag_list": "cml-77,gpu", "paused": 1})

    assert status == 200
    assert (updated["run_untagged"], updated["tag_list"], updated["paused"], updated["active"]) == (
        False,
        ["cml-77", "gpu"],
        True,
        False,
    )
    assert call(api, "PUT", path, json_body={"locked": False, "description": "renamed"})[1]["locked"] is False
    assert [job["id"] for job in call(api, "GET", f"{path}/jobs")[1]] == [5]
    assert call(api, "GET", f"{path}/jobs?status=success")[1] == []
    assert [r["description"] for r in api.runners()] == ["renamed"]

    assert call(api, "DELETE", path, DEVELOPER)[0] == 403
    assert call(api, "DELETE", path)[:2] == (204, None)
    assert call(api, "GET", path)[:2] == (404, {"message": "404 Runner Not Found"})
    assert call(api, "DELETE", path)[0] == 404
    assert api.runners() == []


def test_runner_calls_are_logged_with_their_form(api):
    register(api, description="x")
    call(api, "GET", "/runners?per_page=100", READER)

    [create] = api.requests_to("POST", "/user/runners$")
    assert (create.status, create.form) == (
        201,
        {"runner_type": "project_type", "project_id": "4242", "description": "x"},
    )
    assert api.requests_to("GET", "/runners$")[0].query == {"per_page": "100"}
    assert call(api, "GET", "/runners", "glpat-unknown")[0] == 401
