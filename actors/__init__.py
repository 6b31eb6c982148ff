"""The actor system: supervisor, provider and job actors, the scheduler and the event bus.

Nothing here blocks on another actor: actors exchange the typed messages of
``actors._messages``; only the Engine facade (outside every actor) waits.
"""

from actors._events import EventBus, JobEvent, Publish, Subscribers
from actors._job import JobActor, JobSettings
from actors._messages import (
    CancelJob,
    ClearCompleted,
    CreateJob,
    InjectCrash,
    Ready,
    RetryJob,
    SyncJob,
    TestConnection,
)
from actors._provider import ProviderActor, ProviderHandle
from actors._scheduler import Scheduler, TimerHandle
from actors._supervisor import SupervisorActor, SupervisorSettings

__all__ = [
    "CancelJob",
    "ClearCompleted",
    "CreateJob",
    "EventBus",
    "InjectCrash",
    "JobActor",
    "JobEvent",
    "JobSettings",
    "ProviderActor",
    "ProviderHandle",
    "Publish",
    "Ready",
    "RetryJob",
    "Scheduler",
    "Subscribers",
    "SupervisorActor",
    "SupervisorSettings",
    "SyncJob",
    "TestConnection",
    "TimerHandle",
]
