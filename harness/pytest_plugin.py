"""pytest plugin of the harness (fixtures for the stack); filled in by the stack work."""

from __future__ import annotations
