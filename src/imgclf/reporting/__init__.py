"""What a run shows and keeps: matplotlib figures, pictures sent to the loggers, JSON files.

Leaf helpers with no imgclf imports, used by training, evaluation and the commands alike.
"""

from imgclf.reporting.figures import new_figure, save_figure
from imgclf.reporting.files import write_json
from imgclf.reporting.loggers import log_picture, wandb_logger, write_run_summary
from imgclf.reporting.quiet import quiet_third_party

__all__ = [
    "log_picture",
    "new_figure",
    "quiet_third_party",
    "save_figure",
    "wandb_logger",
    "write_json",
    "write_run_summary",
]
