"""What a trained model does and gets wrong: metrics, clipping, TTA, the misclassification
views and confusion matrix, their pictures and files, predictions and submissions, export.
"""

from imgclf.lazy_exports import lazy_exports

# Every name is loaded on first use (PEP 562), so importing one module of this package
# does not import the others (a command that needs no Lightning does not load it).
_EXPORTS = {
    "best_eps": "imgclf.evaluation.clipping",
    "clip_probs": "imgclf.evaluation.clipping",
    "log_loss": "imgclf.evaluation.clipping",
    "CollectPredictions": "imgclf.evaluation.collect",
    "prediction_trainer": "imgclf.evaluation.collect",
    "export_model": "imgclf.evaluation.export",
    "Interpretation": "imgclf.evaluation.interpretation",
    "interpret": "imgclf.evaluation.interpretation",
    "Prediction": "imgclf.evaluation.submission",
    "predict": "imgclf.evaluation.prediction",
    "write_submission": "imgclf.evaluation.submission",
    "predict_with_tta": "imgclf.evaluation.tta",
    "VIEWS": "imgclf.evaluation.views",
    "ErrorAnalysis": "imgclf.evaluation.views",
    "analyse_errors": "imgclf.evaluation.views",
}

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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
