"""What a trained model does and gets wrong: metrics, clipping, TTA, the misclassification
views and confusion matrix, their pictures and files, predictions and submissions, export.
"""

from imgclf.evaluation.clipping import best_eps, clip_probs, log_loss
from imgclf.evaluation.collect import CollectPredictions, prediction_trainer
from imgclf.evaluation.export import export_model
from imgclf.evaluation.interpretation import Interpretation, interpret
from imgclf.evaluation.prediction import Prediction, predict
from imgclf.evaluation.submission import write_submission
from imgclf.evaluation.tta import predict_with_tta
from imgclf.evaluation.views import VIEWS, ErrorAnalysis, analyse_errors

__all__ = [
    "VIEWS",
    "CollectPredictions",
    "ErrorAnalysis",
    "Interpretation",
    "Prediction",
    "analyse_errors",
    "best_eps",
    "clip_probs",
    "export_model",
    "interpret",
    "log_loss",
    "predict",
    "predict_with_tta",
    "prediction_trainer",
    "write_submission",
]
