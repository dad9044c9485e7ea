"""What a run shows and keeps: matplotlib figures, pictures sent to the loggers, JSON files.

Leaf helpers with no imgclf imports, used by training, evaluation and the commands alike.
"""

from imgclf.lazy_exports import lazy_exports

# Every name is loaded on first use (PEP 562), so importing one module of this package
# does not import the others (a command that needs no Lightning does not load it).
_EXPORTS = {
    "new_figure": "imgclf.reporting.figures",
    "save_figure": "imgclf.reporting.figures",
    "write_json": "imgclf.reporting.files",
    "log_picture": "imgclf.reporting.loggers",
    "wandb_logger": "imgclf.reporting.loggers",
    "write_run_summary": "imgclf.reporting.loggers",
    "quiet_third_party": "imgclf.reporting.quiet",
}

__all__ = [
    "log_picture",
    "new_figure",
    "quiet_third_party",
    "save_figure",
    "wandb_logger",
    "write_json",
    "write_run_summary",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
