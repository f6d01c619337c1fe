"""GitLab's processing of a pipeline's jobs, small enough to read: which jobs run, which are
skipped, which wait for someone to play them. gitlab-ci-local runs every job it is given and
knows neither `skipped` nor `ignored`; this model takes the jobs gitlab-ci-local lists for a
pipeline (after `rules:`, so with each job's `when`, `allow_failure` and `needs`) and processes
them as GitLab 17.x/18.x does:

- app/services/ci/pipeline_processing/atomic_processing_service.rb: a created job is processed
  once the jobs it depends on are complete (success, failed, canceled, skipped). It depends on
  its `needs:` (a DAG job; `needs: []` is one, depending on nothing) or, without `needs:`, on
  every job of the earlier stages.
- lib/gitlab/ci/status/composite.rb: the status of those jobs together. With `allow_failure`, a
  failed job counts as success with warnings and an unplayed manual job as ignored. For a DAG
  job, any skipped or ignored need makes it skipped, and any need not complete keeps it waiting;
  for a stage job, only skipped or ignored jobs make it skipped.
- app/services/ci/process_build_service.rb: `on_success` and `manual` accept success (a stage
  job also skipped), `always` accepts success, failed and skipped, `on_failure` failed; a job
  whose dependencies end otherwise is skipped. A `manual` job then waits to be played.
- app/services/ci/reset_skipped_jobs_service.rb: playing a manual job resets the jobs still
  skipped that need it (directly or through others) or sit in a later stage, and processes them
  again; a job that already ran stays as it is.
- composite.rb again: a cancelled job (not allowed to fail) makes the composite `canceled`, which
  no `when:` accepts (`always` takes success, failed and skipped only), so what needs it is skipped.
- lib/gitlab/ci/config/entry/job.rb (`static_allow_failure`): `allow_failure: {exit_codes: [...]}`
  is stored as `false`; app/models/ci/build.rb (`allowed_to_fail_with_code?`) makes a failure
  with a listed exit code an allowed one. A cancelled job, or another exit code, is not allowed.
- workflow:auto_cancel:on_new_commit `interruptible` (doc/ci/yaml/_index.md): a newer pipeline
  cancels the older one's interruptible jobs that have not finished, and only those.

A job that runs ends at once, with the outcome the caller gives it ("success" unless told;
"failed:3" is a failure with exit code 3), or stays "running" until `finish` ends it.
The rules above were checked line by line against composite.rb, process_build_service.rb and
reset_skipped_jobs_service.rb as GitLab's mirror (github.com/gitlabhq/gitlabhq) holds them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

COMPLETE = {"success", "failed", "canceled", "skipped"}
PARALLEL_NAME = re.compile(r"^(.+): \[[^\]]+\]$")  # "sweep-run: [1/2]", a `parallel:` instance


@dataclass
class Job:
    name: str
    stage: str
    when: str = "on_success"
    allow_failure: bool = False
    needs: list[str] | None = None  # None: no `needs:` keyword, so the earlier stages
    allow_failure_exit_codes: tuple[int, ...] = ()  # allow_failure: {exit_codes: [...]}
    interruptible: bool = False


def base_name(name: str) -> str:
    """The job's name in the YAML (what `needs:` names) for a `parallel:` instance."""
    found = PARALLEL_NAME.match(name)
    return found.group(1) if found else name


def accepted(when: str, dag: bool) -> set[str]:
    """process_build_service.rb, valid_statuses_for_processable."""
    if when in ("on_success", "manual", "delayed"):
        return {"success"} if dag else {"success", "skipped"}
    return {"always": {"success", "failed", "skipped"}, "on_failure": {"failed"}}.get(when, set())


class Pipeline:
    """`Pipeline(jobs, stages, outcomes)` is processed at once; `play(name)` plays a manual job.
    `status[name]` is GitLab's status of each job."""

    def __init__(self, jobs: list[Job], stages: list[str], outcomes: dict[str, str] | None = None):
        self.jobs = {job.name: job for job in sorted(jobs, key=lambda job: stages.index(job.stage))}
        self.stages = stages
        self.outcomes = outcomes or {}
        self.status = dict.fromkeys(self.jobs, "created")
        self.exit_codes: dict[str, int] = {}  # of the jobs that failed with one
        self.order: list[str] = []  # the jobs that ran, in the order they ran
        self.process()

    @classmethod
    def from_listing(
        cls,
        listed: dict[str, dict],
        stages: list[str],
        outcomes: dict | None = None,
        interruptible: set[str] = frozenset(),
    ) -> Pipeline:
        """The jobs as `gitlab-ci-local --list-json` lists them; `when: never` is not created, and
        an optional need of a job that is not created is dropped, as GitLab drops it. The listing
        leaves out `interruptible`: `interruptible` names the jobs that are (by their YAML name)."""
        created = {name: job for name, job in listed.items() if job["when"] != "never"}
        names = {base_name(name) for name in created}
        jobs = []
        for name, job in created.items():
            needs = None
            if "needs" in job:
                needs = []
                for need in job["needs"]:
                    need = need if isinstance(need, dict) else {"job": need}
                    if need["job"] in names:
                        needs.append(need["job"])
                    elif not need.get("optional"):
                        raise ValueError(f"{name} needs {need['job']}, which this pipeline does not create")
            allowed = job["allow_failure"]
            codes = tuple(allowed["exit_codes"]) if isinstance(allowed, dict) else ()
            allowed = allowed is True
            jobs.append(Job(name, job["stage"], job["when"], allowed, needs, codes, base_name(name) in interruptible))
        return cls(jobs, stages, outcomes)

    def dependencies(self, job: Job) -> list[str]:
        if job.needs is None:
            earlier = self.stages.index(job.stage)
            return [name for name, other in self.jobs.items() if self.stages.index(other.stage) < earlier]
        return [name for name in self.jobs if base_name(name) in job.needs]

    def composite(self, names: list[str], dag: bool) -> str:
        """composite.rb's status of these jobs (only what decides processing)."""
        statuses = set()
        for name in names:
            status, job = self.status[name], self.jobs[name]
            if self.allowed_to_fail(name) and status in ("failed", "canceled"):
                status = "success_with_warnings"
            elif job.allow_failure and status == "manual":
                status = "ignored"
            statuses.add(status)
        if not statuses:
            return "success"  # status_collection.rb: no dependencies at all
        if dag and statuses & {"skipped", "ignored"}:
            return "skipped"
        if dag and not statuses <= {"success", "failed", "canceled", "skipped", "success_with_warnings"}:
            return "pending"
        if statuses <= {"skipped", "ignored"}:
            return "skipped"
        if statuses <= {"success", "skipped", "success_with_warnings", "ignored"}:
            return "success"
        if statuses <= {"canceled", "success", "skipped", "success_with_warnings", "ignored"}:
            return "canceled"
        if statuses & {"created", "manual", "pending", "running"}:
            return "pending"
        return "failed"

    def process(self) -> None:
        changed = True
        while changed:
            changed = False
            for name, job in self.jobs.items():
                if self.status[name] != "created":
                    continue
                previous = self.composite(self.dependencies(job), job.needs is not None)
                if previous not in COMPLETE:
                    continue
                if previous not in accepted(job.when, job.needs is not None):
                    self.status[name] = "skipped"
                elif job.when == "manual":
                    self.status[name] = "manual"
                else:
                    self.run(name)
                changed = True

    def play(self, name: str) -> None:
        """Someone plays the manual job `name` (reset_skipped_jobs_service.rb afterwards)."""
        if self.status[name] != "manual":
            raise ValueError(f"{name} is {self.status[name]}, not a manual job waiting to be played")
        self.run(name)
        dependents, grew = {name}, True
        while grew:
            found = {other for other, job in self.jobs.items() if set(self.dependencies(job)) & dependents}
            grew = not found <= dependents
            dependents |= found
        later = {other for other, job in self.jobs.items() if job.stage in self.stages[self.stage_index(name) + 1 :]}
        for other in (dependents | later) - {name}:
            if self.status[other] == "skipped":
                self.status[other] = "created"
        self.process()

    def allowed_to_fail(self, name: str) -> bool:
        job = self.jobs[name]
        code = self.exit_codes.get(name)
        return job.allow_failure or (self.status[name] == "failed" and code in job.allow_failure_exit_codes)

    def run(self, name: str) -> None:
        self.order.append(name)
        self.end(name, self.outcomes.get(name, "success"))

    def end(self, name: str, outcome: str) -> None:
        status, _, code = outcome.partition(":")
        self.status[name] = status
        if code:
            self.exit_codes[name] = int(code)

    def finish(self, name: str, outcome: str = "success") -> None:
        """The running job `name` ends with `outcome`."""
        if self.status[name] != "running":
            raise ValueError(f"{name} is {self.status[name]}, not running")
        self.end(name, outcome)
        self.process()

    def auto_cancel(self) -> None:
        """A newer pipeline starts (workflow:auto_cancel:on_new_commit interruptible): the
        interruptible jobs not finished yet are cancelled, the others go on."""
        for name, job in self.jobs.items():
            if job.interruptible and self.status[name] in ("created", "pending", "running"):
                self.status[name] = "canceled"
        self.process()

    def stage_index(self, name: str) -> int:
        return self.stages.index(self.jobs[name].stage)

    def ran(self) -> set[str]:
        return {name for name, status in self.status.items() if status in ("success", "failed")}

    def waiting(self) -> set[str]:
        """Manual jobs nobody has played."""
        return {name for name, status in self.status.items() if status == "manual"}
