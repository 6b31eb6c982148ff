"""An example debrid-engine provider: ``ExampleProvider`` and the fake service it talks to.

Registered with debrid-engine by its entry point (``debrid_engine.providers``:
``example = debrid_example_provider:ExampleProvider``); see
docs/adding-a-provider.md in debrid-engine for the walk-through.
"""

from debrid_example_provider.fake import FakeExampleService
from debrid_example_provider.provider import ERRORS, STATES, ExampleProvider

__all__ = ["ERRORS", "STATES", "ExampleProvider", "FakeExampleService"]
