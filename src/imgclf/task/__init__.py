"""What a model predicts, and everything that follows from it: one object per task.

`SingleLabel` (one class per image: softmax, cross-entropy, argmax) and `MultiLabel`
(any number of tags per image: sigmoid, binary cross-entropy, thresholds) own the loss,
the activation, the metrics and which one is monitored, decoding probabilities into
labels, clipping, the views' notion of "wrong", the submission format and the export's
output description. The model, the LR finder, the callbacks, evaluation, export and the
Python API ask the task instead of calling softmax, argmax or cross-entropy themselves.
"""

from imgclf.task.choose import TASKS, choose_task, task_named
from imgclf.task.fbeta import best_threshold, samples_fbeta
from imgclf.task.multi import MultiLabel
from imgclf.task.single import SingleLabel

__all__ = [
    "TASKS",
    "MultiLabel",
    "SingleLabel",
    "best_threshold",
    "choose_task",
    "samples_fbeta",
    "task_named",
]
