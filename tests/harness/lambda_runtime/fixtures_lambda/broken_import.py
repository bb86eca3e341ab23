"""A handler module whose import fails."""

import module_that_does_not_exist_anywhere  # noqa: F401


def handler(event, context):  # pragma: no cover - never reached
    return None
