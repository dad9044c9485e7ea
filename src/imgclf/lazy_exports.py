"""A package's public names, imported only when first used (PEP 562): `imgclf predict`
then loads neither Lightning nor torchmetrics through a package `__init__`."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(
    package: str, exports: dict[str, str], namespace: dict
) -> tuple[Callable, Callable]:
    """The `__getattr__` and `__dir__` of `package`: a name of `exports` (name -> module)
    is imported from its module on first use and kept in `namespace` (the package's
    globals), so it resolves once."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
