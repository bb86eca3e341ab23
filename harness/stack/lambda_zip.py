"""The Lambda functions' deployment package: the ``lambdas`` package, zipped reproducibly."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from harness.stack.infra import ROOT

__all__ = ["VENDOR_DIR", "build_lambda_zip"]

#: Where `make lambda-package` puts the Lambdas' dependencies built for python3.12 on x86_64.
VENDOR_DIR = ROOT / "build" / "lambda-deps"


def build_lambda_zip(root: Path = ROOT, vendor_dir: Path | None = None) -> bytes:
    """Zip the ``lambdas`` package (plus vendored dependencies, if given), byte-for-byte reproducible.

    The embedded runtime runs the handlers with this project's own packages, so it needs no
    vendoring; LocalStack and AWS run them in python3.12 containers that need ``vendor_dir``.
    """
    buffer = io.BytesIO()
    sources = [(path, path.relative_to(root)) for path in sorted((root / "lambdas").rglob("*"))]
    if vendor_dir is not None:
        sources += [(path, path.relative_to(vendor_dir)) for path in sorted(vendor_dir.rglob("*"))]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, name in sources:
            if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            info = zipfile.ZipInfo(name.as_posix(), date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()
