"""What a model predicts, and everything that follows from it: one object per task.

`SingleLabel` (one class per image: softmax, cross-entropy, argmax) and `MultiLabel`
(any number of tags per image: sigmoid, binary cross-entropy, thresholds) own the loss,
the activation, the metrics and which one is monitored, decoding probabilities into
labels, clipping, the views' notion of "wrong", the submission format and the export's
output description. The model, the LR finder, the callbacks, evaluation, export and the
Python API ask the task instead of calling softmax, argmax or cross-entropy themselves.
"""

from imgclf.lazy_exports import lazy_exports

# Every name is loaded on first use (PEP 562), so importing one module of this package
# does not import the others (a command that needs no Lightning does not load it).
_EXPORTS = {
    "TASKS": "imgclf.task.choose",
    "choose_task": "imgclf.task.choose",
    "task_named": "imgclf.task.choose",
    "best_threshold": "imgclf.task.fbeta",
    "samples_fbeta": "imgclf.task.fbeta",
    "MultiLabel": "imgclf.task.multi",
    "SingleLabel": "imgclf.task.single",
}

__all__ = [
    "TASKS",
    "MultiLabel",
    "SingleLabel",
    "best_threshold",
    "choose_task",
    "samples_fbeta",
    "task_named",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
