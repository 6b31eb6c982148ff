"""The actor system: root, supervisor, provider and job actors, the scheduler and the event bus.

Nothing here blocks on another actor: actors exchange the typed messages of
``actors._messages``; only the Engine facade (outside every actor) waits.
"""

from actors._admission import Admission
from actors._download import DownloadSettings
from actors._events import EventBus, JobEvent, Publish, Subscribers
from actors._handle import ProviderHandle
from actors._job import JobActor, JobSettings
from actors._messages import (
    CancelJob,
    ClearCompleted,
    CreateJob,
    DeleteJobs,
    Describe,
    DescribeProvider,
    InjectCrash,
    ProviderReport,
    Ready,
    RetryJob,
    SupervisorReport,
    SyncJob,
    TestConnection,
)
from actors._provider import ProviderActor
from actors._provider_book import ProviderBook
from actors._replies import OnceReply
from actors._restarts import RestartIntensity
from actors._root import RootActor, SupervisorHandle
from actors._scheduler import Scheduler, TimerHandle
from actors._supervisor import SupervisorActor, SupervisorSettings
from actors._writer import EventBacklog, Writer

__all__ = [
    "Admission",
    "CancelJob",
    "ClearCompleted",
    "CreateJob",
    "DeleteJobs",
    "Describe",
    "DescribeProvider",
    "DownloadSettings",
    "EventBacklog",
    "EventBus",
    "InjectCrash",
    "JobActor",
    "JobEvent",
    "JobSettings",
    "OnceReply",
    "ProviderActor",
    "ProviderBook",
    "ProviderHandle",
    "ProviderReport",
    "Publish",
    "Ready",
    "RestartIntensity",
    "RetryJob",
    "RootActor",
    "Scheduler",
    "Subscribers",
    "SupervisorActor",
    "SupervisorHandle",
    "SupervisorReport",
    "SupervisorSettings",
    "SyncJob",
    "TestConnection",
    "TimerHandle",
    "Writer",
]
