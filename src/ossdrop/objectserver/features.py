"""Optional store features installed on top of the core routes (PostObject and callbacks, CORS, processing)."""

from __future__ import annotations

from ossdrop.objectserver.app import ObjectServer


def install_features(app: ObjectServer) -> None:
    """Register every feature module available; each adds routes and/or extensions to ``app``."""
    return None
