"""The pipeline's own cloud runner, around `cml runner launch` (README, "Training on bigger machines").

Runs in the CML image (Python 3.8, standard library only), in the launch-runner and
remove-runner jobs:

    python3 ci/cloud_runner.py preflight       # one line per missing piece, before anything is paid for
    python3 ci/cloud_runner.py image           # the Ubuntu 22.04 image for TRAIN_CLOUD
    cml runner launch ... --token "$CLOUD_RUNNER_TOKEN" --labels "cml-$CI_PIPELINE_IID" --single ...
    python3 ci/cloud_runner.py wait 10         # online within 10 minutes, then tagged jobs only
    python3 ci/cloud_runner.py record "$CLOUD_RUNNER_NAME"   # after_script: the machine's id, for remove
    python3 ci/cloud_runner.py remove          # the runners and the machine the pipeline left

CML registers the runner with "run untagged jobs" on, so any untagged job of the project could
take the paid machine (and, with --single, leave the train job waiting): `wait` turns that off.
A runner whose machine never came up would leave the train job pending for GitLab's hour
before it is dropped as stuck: `wait` fails the launch job within minutes instead, and then
GitLab never starts the train job. With --single the runner unregisters itself and destroys its
VM after the train job; `remove` is for when that did not happen (the job failed, or the
machine broke).

The label is `cml-<pipeline IID>`: GitLab expands the train job's `tags:` once, as it creates the
pipeline, when CI_PIPELINE_ID is not known yet (a tag `cml-$CI_PIPELINE_ID` stays as written and
no runner ever matches it); the pipeline's IID, unique in the project, is.

The runner is registered with CLOUD_RUNNER_TOKEN (Maintainer, a protected variable: only these jobs,
on protected branches, see it), never with REPO_TOKEN, which every job of every branch can read
and which stays a Developer's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from gitlab_api import ApiError, Fail, GitLab, run

RUNNER_TOKEN = "CLOUD_RUNNER_TOKEN"
RUNNER_TOKEN_HELP = (
    "create a project access token (GitLab.com Premium/Ultimate or self-managed GitLab) or a bot account's personal "
    "access token with the Maintainer role and the api scope, and store it as a masked and protected CI/CD variable "
    "named CLOUD_RUNNER_TOKEN; REPO_TOKEN stays a Developer's token (README, 'Training on bigger machines')"
)

# Credentials the terraform provider behind CML reads for each cloud (they also reach the VM). On
# AWS under names of their own: the jobs' AWS_ACCESS_KEY_ID is the S3 key, which the train job
# on the machine receives from GitLab; the `.cml` jobs' before_script (ci/cloud-runner.gitlab-ci.yml)
# hands these to CML.
CLOUD_CREDENTIALS = {
    "aws": ["TRAIN_CLOUD_AWS_ACCESS_KEY_ID", "TRAIN_CLOUD_AWS_SECRET_ACCESS_KEY"],
    "gcp": ["GOOGLE_APPLICATION_CREDENTIALS_DATA"],
    "azure": ["AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_SUBSCRIPTION_ID", "AZURE_TENANT_ID"],
    "kubernetes": ["KUBERNETES_CONFIGURATION"],
}
# Ubuntu 22.04: CML's default images (18.04/20.04) run a set-up that no longer installs terraform.
UBUNTU_2204 = {
    # An AMI name pattern: the provider takes the newest match from ANY owner (README, security).
    "aws": "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*",
    "gcp": "ubuntu-os-cloud/ubuntu-2204-lts",
    "azure": "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest",
    "kubernetes": "",  # a container: CML's image already has terraform
}
MAINTAINER = 40
POLL_SECONDS = 10


def say(message: str) -> None:
    print(f"cloud_runner: {message}", file=sys.stderr)


def runner_gitlab() -> GitLab:
    return GitLab(RUNNER_TOKEN, RUNNER_TOKEN_HELP)


def pipeline_label() -> str:
    """The pipeline's runner label, as GitLab expanded the train job's tag at the pipeline's creation."""
    return f"cml-{os.environ['CI_PIPELINE_IID']}"


def pipeline_runners(gitlab: GitLab) -> list[dict]:
    """Runners of this project carrying this pipeline's label."""
    tag = quote(pipeline_label())
    return gitlab.every_page(f"/projects/{os.environ.get('CI_PROJECT_ID', '')}/runners?tag_list={tag}")


def preflight() -> list[str]:
    """Everything that would make the launch fail or unsafe, one sentence each."""
    problems = []
    cloud = os.environ.get("TRAIN_CLOUD", "")
    if cloud not in CLOUD_CREDENTIALS:
        problems.append(f"TRAIN_CLOUD is {cloud!r}: set it to one of {', '.join(CLOUD_CREDENTIALS)}.")
    missing = [name for name in CLOUD_CREDENTIALS.get(cloud, []) if not os.environ.get(name)]
    if cloud == "aws" and os.environ.get("AWS_ROLE_ARN") and os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        missing = []  # OIDC: the machine then deletes itself with TRAIN_CLOUD_PERMISSION_SET's rights
        if not os.environ.get("TRAIN_CLOUD_PERMISSION_SET"):
            problems.append(
                "TRAIN_CLOUD_PERMISSION_SET is not set: with OIDC the machine gets no keys, so it needs an instance "
                "profile that may terminate it, or it cannot delete itself."
            )
    if missing:
        problems.append(
            f"{', '.join(missing)} not set: the {cloud} credentials CML launches the machine with; add them as "
            "masked CI/CD variables (protected, if only protected branches train in the cloud)."
        )
    if cloud == "aws" and not os.environ.get("TRAIN_CLOUD_AWS_SECURITY_GROUP"):
        problems.append(
            "TRAIN_CLOUD_AWS_SECURITY_GROUP is not set: without it CML opens a security group of its own to the "
            "internet; create one that allows SSH (22) from your runners only and name it here."
        )
    return problems + token_problems(runner_gitlab())


def token_problems(gitlab: GitLab) -> list[str]:
    """Launching a runner needs the api scope and the Maintainer role, beyond what the report needs,
    in a token of its own."""
    try:
        gitlab.check_token()
    except Fail as error:
        return [str(error)]
    if gitlab.token == os.environ.get("REPO_TOKEN"):
        return [
            "CLOUD_RUNNER_TOKEN is the same token as REPO_TOKEN, which every job of every branch can read: a "
            "Maintainer's token there lets any Developer act as a Maintainer; " + RUNNER_TOKEN_HELP + "."
        ]
    scopes = gitlab.call("GET", "/personal_access_tokens/self").get("scopes", [])
    problems = []
    if "api" not in scopes:
        problems.append(
            f"CLOUD_RUNNER_TOKEN has the scopes {', '.join(scopes) or 'none'}: CML creates, lists and removes runners "
            "through the API, which needs the api scope; create a token with the api scope."
        )
    project = gitlab.call("GET", f"/projects/{os.environ.get('CI_PROJECT_ID', '')}")
    levels = [(access or {}).get("access_level", 0) for access in (project.get("permissions") or {}).values()]
    if max(levels, default=0) < MAINTAINER:
        problems.append(
            "CLOUD_RUNNER_TOKEN's user is not a Maintainer of this project: creating a project runner needs "
            "the Maintainer role; give the token (or its bot user) Maintainer, or train with training_runner "
            "'tagged' instead."
        )
    return problems


def image() -> None:
    cloud = os.environ.get("TRAIN_CLOUD", "")
    print(os.environ.get("TRAIN_CLOUD_IMAGE") or UBUNTU_2204.get(cloud, ""))


def record(name: str) -> None:
    """The machine's id for `remove`, from the terraform state CML leaves (also after a failed launch)."""
    state_file = Path.home() / ".cml" / name / "terraform.tfstate"
    if not state_file.exists():
        say("no machine was created.")
        return
    state = json.loads(state_file.read_text())
    [runner] = [resource for resource in state["resources"] if resource["type"] == "iterative_cml_runner"]
    Path("cloud_runner.env").write_text(f"CLOUD_RUNNER_ID={runner['instances'][0]['attributes']['id']}\n")


def wait(minutes: float) -> None:
    """Fail unless the pipeline's runner is online within `minutes`; then it takes tagged jobs only."""
    gitlab = runner_gitlab()
    deadline = time.monotonic() + minutes * 60
    while True:
        online = [runner for runner in pipeline_runners(gitlab) if runner.get("online")]
        if online:
            break
        if time.monotonic() > deadline:
            raise Fail(
                f"the cloud runner {pipeline_label()} did not come online within {minutes:g} minutes, "
                "so the train job will not start; see this job's log above (the VM's set-up), and check the "
                "cloud console for a machine tagged gitlab_pipeline=" + os.environ["CI_PIPELINE_ID"] + "."
            )
        time.sleep(max(0.5, min(POLL_SECONDS, deadline - time.monotonic())))
    for runner in online:
        form = {"run_untagged": "false", "locked": "true"}
        gitlab.call("PUT", f"/runners/{runner['id']}", form)
        say(f"runner {runner['id']} ({runner.get('description')}) is online and takes this pipeline's train job only.")


def remove() -> None:
    """Unregister the pipeline's runners and delete its machine: both are gone already when the
    train job ran to its end, and deleting them again changes nothing."""
    gitlab = runner_gitlab()
    left = pipeline_runners(gitlab)
    for runner in left:
        try:
            gitlab.call("DELETE", f"/runners/{runner['id']}")
        except ApiError as error:
            if error.status != 404:  # 404: it unregistered itself meanwhile
                raise
        say(f"unregistered runner {runner['id']} ({runner.get('description')}).")
    machine = os.environ.get("CLOUD_RUNNER_ID", "")
    if not machine and not left:
        say("nothing to remove: no machine was created, and no runner of this pipeline is registered.")
        return
    if not machine:
        raise Fail(
            "the launch job recorded no machine id, so its VM may still run: find it in the cloud console by the "
            f"tag gitlab_pipeline={os.environ['CI_PIPELINE_ID']} and delete it."
        )
    region = os.environ.get("TRAIN_CLOUD_REGION")
    command = ["leo", "destroy-runner", "--cloud", os.environ["TRAIN_CLOUD"], *(["--region", region] if region else [])]
    command.append(machine)
    destroyed = subprocess.run(command, capture_output=True, text=True)
    if destroyed.returncode != 0:
        reason = (destroyed.stderr or destroyed.stdout).strip().splitlines()[-1:] or ["no output"]
        raise Fail(
            f"could not destroy the machine {machine} ({reason[0]}); delete it in the cloud console (tag "
            f"gitlab_pipeline={os.environ['CI_PIPELINE_ID']}) so it stops costing money."
        )
    say(f"destroyed the machine {machine}.")


def check() -> None:
    problems = preflight()
    if problems:
        raise Fail("\n".join(problems))


def main(argv: list[str]) -> int:
    commands = {
        "preflight": check,
        "image": image,
        "wait": lambda minutes: wait(float(minutes)),
        "record": record,
        "remove": remove,
    }
    arguments = {"wait": 1, "record": 1}
    if not argv or argv[0] not in commands or len(argv) - 1 != arguments.get(argv[0], 0):
        usage = "preflight | image | wait MINUTES | record NAME | remove"
        print(f"usage: python3 ci/cloud_runner.py {usage}", file=sys.stderr)
        return 2
    return run(lambda: commands[argv[0]](*argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
