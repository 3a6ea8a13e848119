"""pmrfusion: multimodal fusion that survives missing and noisy modalities.

PMR (physics-inspired reconfiguration) and its rivals under one API, with the robustness
protocols and benchmarks of the papers, on real feature datasets.

`import pmrfusion` is cheap: the public names below load (all together, as one eager import
would, so every registry is filled) on first use of any of them. The command line imports only
what each command needs, so `pmrfusion --help` and `pmrfusion datasets` start fast.
"""

from __future__ import annotations

import importlib
import sys
import types as _types  # aliased: the subpackage `pmrfusion.types` rebinds the name `types` here
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pmrfusion.bench.claims import judge, load_claims
    from pmrfusion.bench.executors import DaskExecutor, LocalExecutor, cell_executor
    from pmrfusion.bench.experiment import load_experiment
    from pmrfusion.bench.experiment_run import run_experiment
    from pmrfusion.bench.runner import RunSpec, evaluate, fit_method, model_inputs, prepare_seed, run_grid
    from pmrfusion.bench.suite import SuiteSpec, run_suite
    from pmrfusion.data.absent import ABSENT_FILLS, fill_absent
    from pmrfusion.data.avmnist import load_avmnist
    from pmrfusion.data.dataset import MultimodalData
    from pmrfusion.data.from_python import from_arrays, from_dataframe, from_torch_dataset
    from pmrfusion.data.labels import decode_labels
    from pmrfusion.data.loaders import available_datasets, load_dataset
    from pmrfusion.data.manifest import load_manifest
    from pmrfusion.data.prepared import PreparedData, prepare
    from pmrfusion.data.presence import presence_patterns
    from pmrfusion.data.raw import RawMultimodalData, RawSplit
    from pmrfusion.data.tensors import TensorSplit
    from pmrfusion.errors import PMRFusionError
    from pmrfusion.eval.metrics import classification_metrics
    from pmrfusion.eval.paired import paired_difference
    from pmrfusion.eval.protocols import available_protocols, conditions, register_protocol
    from pmrfusion.eval.regression_metrics import regression_metrics
    from pmrfusion.methods import (
        EqualDimsModel,
        FusionModel,
        available_methods,
        build_method,
        method_config,
        register_method,
    )
    from pmrfusion.methods.encoded import build_model
    from pmrfusion.modules.composition import EncoderConfig, default_encoders, with_encoder_inputs
    from pmrfusion.modules.encoders import available_encoders, build_encoder, register_encoder
    from pmrfusion.modules.reconfiguration import Reconfiguration
    from pmrfusion.objectives.preservation import preservation_loss
    from pmrfusion.optim import OptimizerSpec, make_optimizer
    from pmrfusion.train.checkpoint import load_checkpoint, load_for_evaluation, save_checkpoint, save_trained
    from pmrfusion.train.prediction import Predictions, predict_checkpoint, write_predictions
    from pmrfusion.train.regimes import fit_unimodal, pretrain_encoders
    from pmrfusion.train.trainer import TrainConfig, predict, seed_everything, train
    from pmrfusion.types import Batch, ModelOutput

__version__ = "0.1.0"

__all__ = [
    "decode_labels",
    "from_arrays",
    "from_dataframe",
    "from_torch_dataset",
    "presence_patterns",
    "ABSENT_FILLS",
    "DaskExecutor",
    "LocalExecutor",
    "SuiteSpec",
    "cell_executor",
    "run_suite",
    "Predictions",
    "predict_checkpoint",
    "write_predictions",
    "Batch",
    "EncoderConfig",
    "RawMultimodalData",
    "RawSplit",
    "available_encoders",
    "build_encoder",
    "build_model",
    "default_encoders",
    "fit_unimodal",
    "load_avmnist",
    "load_manifest",
    "load_for_evaluation",
    "model_inputs",
    "prepare_seed",
    "pretrain_encoders",
    "save_trained",
    "with_encoder_inputs",
    "register_encoder",
    "EqualDimsModel",
    "FusionModel",
    "ModelOutput",
    "MultimodalData",
    "OptimizerSpec",
    "make_optimizer",
    "PMRFusionError",
    "PreparedData",
    "Reconfiguration",
    "RunSpec",
    "TensorSplit",
    "TrainConfig",
    "available_datasets",
    "available_methods",
    "available_protocols",
    "build_method",
    "classification_metrics",
    "conditions",
    "evaluate",
    "fill_absent",
    "fit_method",
    "load_checkpoint",
    "load_dataset",
    "method_config",
    "predict",
    "prepare",
    "preservation_loss",
    "register_method",
    "register_protocol",
    "regression_metrics",
    "run_grid",
    "save_checkpoint",
    "seed_everything",
    "train",
    "judge",
    "load_claims",
    "load_experiment",
    "paired_difference",
    "run_experiment",
]


_SOURCES = {  # public name -> the module that defines it
    "judge": "pmrfusion.bench.claims",
    "load_claims": "pmrfusion.bench.claims",
    "DaskExecutor": "pmrfusion.bench.executors",
    "LocalExecutor": "pmrfusion.bench.executors",
    "cell_executor": "pmrfusion.bench.executors",
    "load_experiment": "pmrfusion.bench.experiment",
    "run_experiment": "pmrfusion.bench.experiment_run",
    "RunSpec": "pmrfusion.bench.runner",
    "evaluate": "pmrfusion.bench.runner",
    "fit_method": "pmrfusion.bench.runner",
    "model_inputs": "pmrfusion.bench.runner",
    "prepare_seed": "pmrfusion.bench.runner",
    "run_grid": "pmrfusion.bench.runner",
    "SuiteSpec": "pmrfusion.bench.suite",
    "run_suite": "pmrfusion.bench.suite",
    "ABSENT_FILLS": "pmrfusion.data.absent",
    "fill_absent": "pmrfusion.data.absent",
    "load_avmnist": "pmrfusion.data.avmnist",
    "MultimodalData": "pmrfusion.data.dataset",
    "from_arrays": "pmrfusion.data.from_python",
    "from_dataframe": "pmrfusion.data.from_python",
    "from_torch_dataset": "pmrfusion.data.from_python",
    "decode_labels": "pmrfusion.data.labels",
    "available_datasets": "pmrfusion.data.loaders",
    "load_dataset": "pmrfusion.data.loaders",
    "load_manifest": "pmrfusion.data.manifest",
    "PreparedData": "pmrfusion.data.prepared",
    "prepare": "pmrfusion.data.prepared",
    "presence_patterns": "pmrfusion.data.presence",
    "RawMultimodalData": "pmrfusion.data.raw",
    "RawSplit": "pmrfusion.data.raw",
    "TensorSplit": "pmrfusion.data.tensors",
    "PMRFusionError": "pmrfusion.errors",
    "classification_metrics": "pmrfusion.eval.metrics",
    "paired_difference": "pmrfusion.eval.paired",
    "available_protocols": "pmrfusion.eval.protocols",
    "conditions": "pmrfusion.eval.protocols",
    "register_protocol": "pmrfusion.eval.protocols",
    "regression_metrics": "pmrfusion.eval.regression_metrics",
    "EqualDimsModel": "pmrfusion.methods",
    "FusionModel": "pmrfusion.methods",
    "available_methods": "pmrfusion.methods",
    "build_method": "pmrfusion.methods",
    "method_config": "pmrfusion.methods",
    "register_method": "pmrfusion.methods",
    "build_model": "pmrfusion.methods.encoded",
    "EncoderConfig": "pmrfusion.modules.composition",
    "default_encoders": "pmrfusion.modules.composition",
    "with_encoder_inputs": "pmrfusion.modules.composition",
    "available_encoders": "pmrfusion.modules.encoders",
    "build_encoder": "pmrfusion.modules.encoders",
    "register_encoder": "pmrfusion.modules.encoders",
    "Reconfiguration": "pmrfusion.modules.reconfiguration",
    "preservation_loss": "pmrfusion.objectives.preservation",
    "OptimizerSpec": "pmrfusion.optim",
    "make_optimizer": "pmrfusion.optim",
    "load_checkpoint": "pmrfusion.train.checkpoint",
    "load_for_evaluation": "pmrfusion.train.checkpoint",
    "save_checkpoint": "pmrfusion.train.checkpoint",
    "save_trained": "pmrfusion.train.checkpoint",
    "Predictions": "pmrfusion.train.prediction",
    "predict_checkpoint": "pmrfusion.train.prediction",
    "write_predictions": "pmrfusion.train.prediction",
    "fit_unimodal": "pmrfusion.train.regimes",
    "pretrain_encoders": "pmrfusion.train.regimes",
    "TrainConfig": "pmrfusion.train.trainer",
    "predict": "pmrfusion.train.trainer",
    "seed_everything": "pmrfusion.train.trainer",
    "train": "pmrfusion.train.trainer",
    "Batch": "pmrfusion.types",
    "ModelOutput": "pmrfusion.types",
}


def _load_public_api() -> None:
    """Import every public name into the package namespace (as the eager import of old did)."""
    for name, module in _SOURCES.items():
        globals()[name] = getattr(importlib.import_module(module), name)


def __getattr__(name: str) -> Any:
    if name in _SOURCES:
        _load_public_api()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SOURCES))


class _Package(_types.ModuleType):
    """Keeps `pmrfusion.train` the function: importing the `pmrfusion.train` subpackage later does
    not rebind the attribute (the subpackage stays in `sys.modules`)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "train" and isinstance(value, _types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
