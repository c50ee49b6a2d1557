"""What every handler receives: settings, storage, clock and the optional feature collaborators."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ossdrop.core.clock import Clock
from ossdrop.core.settings import StoreConfig
from ossdrop.storage.base import ObjectRecord, Storage

if TYPE_CHECKING:
    from ossdrop.objectserver.http import OSSRequest, OSSResponse


class CallbackHook(Protocol):
    """Upload callbacks (§2): validated before the body is read, sent after the object is stored."""

    def prepare(self, req: OSSRequest) -> Any | None:
        """The parsed callback of a request, None when it asks for none; raises ``InvalidArgument``."""

    async def run(
        self, ctx: Context, req: OSSRequest, callback: Any, record: ObjectRecord, operation: str, ok: OSSResponse
    ) -> OSSResponse:
        """Call the app back and turn the outcome into the client's response (200 relayed JSON or 203)."""
        ...


class Processor(Protocol):
    """``x-oss-process`` on GetObject (§7, §8)."""

    async def get(self, ctx: Context, req: OSSRequest, record: ObjectRecord, process: str) -> OSSResponse: ...


@dataclass
class Context:
    """Dependencies of the object server, built once in :func:`ossdrop.objectserver.app.create_app`."""

    config: StoreConfig
    storage: Storage
    clock: Clock
    callback_hook: CallbackHook | None = None
    processor: Processor | None = None
    preflight: Callable[[Context, OSSRequest], Awaitable[OSSResponse]] | None = None
    response_hooks: list[Callable[[Context, OSSRequest, OSSResponse], None]] = field(default_factory=list)
