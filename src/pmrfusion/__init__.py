"""pmrfusion: multimodal fusion that survives missing and noisy modalities.

PMR (physics-inspired reconfiguration) and its rivals under one API, with the robustness
protocols and benchmarks of the papers, on real feature datasets.
"""

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
