"""``python -m harness.endpoint``: the embedded AWS endpoint (public alias of :mod:`harness.aws.endpoint`)."""

from __future__ import annotations

import sys

from harness.aws.endpoint import main

if __name__ == "__main__":
    sys.exit(main())
