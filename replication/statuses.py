"""The states of replication's records, one definition each: the store writes these values, the
services hand them out, and the API maps them to its enums (catalog.api.enums)."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    PENDING = "pending"  # waiting for a worker
    PLANNING = "planning"  # a worker lists the source and plans the tasks
    RUNNING = "running"  # workers copy the images
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COPIED = "copied"
    SKIPPED = "skipped"  # the destination had the image
    FAILED = "failed"
    CONFLICT = "conflict"  # the destination tag points elsewhere
    DENIED = "denied"  # by the rule's policy


class Trigger(StrEnum):
    MANUAL = "manual"
    SCHEDULE = "schedule"
    INDEX = "index"  # indexing the source saw a matching tag appear or move


class RuleOrigin(StrEnum):
    API = "api"  # the API or the command line
    CONFIG = "config"  # the server's configuration file


OPEN_RUN = (RunStatus.PENDING, RunStatus.PLANNING, RunStatus.RUNNING)
OPEN_TASK = (TaskStatus.PENDING, TaskStatus.RUNNING)
FAILED_TASK = (TaskStatus.FAILED, TaskStatus.CONFLICT)  # the task did not copy: the run fails
UNCOPIED_TASK = (*FAILED_TASK, TaskStatus.DENIED)  # the tasks a run view lists with reasons
