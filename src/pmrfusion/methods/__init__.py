"""Registered fusion methods. Importing this package imports every module in it, so a new
method only needs a module here that calls `register_method`."""

import importlib
import pkgutil

from pmrfusion.methods.base import (
    Batch,
    EqualDimsModel,
    FusionModel,
    ModelOutput,
    available_methods,
    build_method,
    method_config,
    register_method,
)

for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = [
    "Batch",
    "EqualDimsModel",
    "FusionModel",
    "ModelOutput",
    "available_methods",
    "build_method",
    "method_config",
    "register_method",
]
