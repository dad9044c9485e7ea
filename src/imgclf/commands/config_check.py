"""Config mistakes found before a command starts, each as one line (exit status 2).

Hydra reports a bad override with several lines and exit status 1 (an unknown key, an
unknown group option, a parse error); a value of the wrong type or range would fail much
later with a traceback. `compose_checked` composes the command's config exactly as Hydra
will, and turns both kinds into a UserError: unknown keys with a "did you mean", unknown
group options with the choices.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from imgclf.commands.sweep import check_optimized_metric
from imgclf.errors import UserError

# (kind, smallest value) -> the keys it rules; checked where the key is in the composed config.
VALUE_RULES: dict[tuple[type, float], tuple[str, ...]] = {
    (int, 0): (
        "seed",
        "data.num_workers",
        "tta.n",
        "callbacks.default.step_checkpoint_every",
        "callbacks.default.views_k",
        "interpret.k",
        "show",
        "examples_per_class",
    ),
    (int, 1): (
        "image_size",
        "top_k",
        "data.image_size",
        "data.batch_size",
        "data.per_class",
        "lr_find.num_iter",
        "trainer.accumulate_grad_batches",
        "callbacks.default.early_stopping_patience",
    ),
    (float, 0): (
        "data.valid_pct",
        "data.min_scale",
        "lr_find.start_lr",
        "lr_find.end_lr",
        "model.label_smoothing",
        "model.mixup_alpha",
        "model.cutmix_alpha",
        "model.mix_prob",
        "tta.beta",
    ),
}
# Settings that also take the word auto (chosen when the run starts).
AUTO_ALLOWED = ("data.num_workers", "data.image_size", "tta.n")
# Settings people look for in the wrong place.
MOVED = {
    "trainer.max_epochs": "the recipe sets the epochs: recipe.stages.<i>.epochs=N",
    "trainer.min_epochs": "the recipe sets the epochs: recipe.stages.<i>.epochs=N",
}


def compose_checked(
    config_dir: Path,
    config_name: str,
    overrides: list[str],
    with_hydra: bool = False,
    built_as=None,
) -> DictConfig:
    """The config Hydra will build from `overrides` (`with_hydra`: and its `hydra`
    section), or a one-line UserError. `built_as(cfg)`: {section: target} for sections the
    command builds otherwise than their `_target_` says (checked against that target's
    parameters; target None: not built, not checked), e.g. `imgclf predict` without
    Lightning."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    check_group_options(config_dir, overrides)
    try:
        cfg = compose(config_dir, config_name, overrides, with_hydra)
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        raise UserError(explain(err, config_dir, config_name, overrides)) from None
    check_values(cfg)
    check_target_types(cfg, built_as(cfg) if built_as else {})
    check_stage_types(cfg)
    check_switches(cfg)
    check_input_sizes(cfg)
    check_optimized_metric(OmegaConf.select(cfg, "optimized_metric", default=None))
    return cfg


def check_group_options(config_dir: Path, overrides: list[str]) -> None:
    """`group=option` names an option of `configs/<group>/`. Hydra checks this itself, except
    for the optional groups (experiment, hparams_search), where it silently skips a missing
    option: the run would go on without the experiment the user asked for."""
    for override in overrides:
        group, _, option = override.partition("=")
        folder = config_dir / group
        if not option or option == "null" or re.search(r"[,(]", option) or not folder.is_dir():
            continue
        choices = sorted(path.stem for path in folder.glob("*.yaml"))
        if option not in choices:
            raise UserError(
                f"{group}={option}: no such {group} option; choose one of: {', '.join(choices)}"
            )


def compose(
    config_dir: Path, config_name: str, overrides: list[str], with_hydra: bool = False
) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(str(config_dir), version_base="1.3"):
        return hydra_compose(config_name, overrides=overrides, return_hydra_config=with_hydra)


def sweep_checked(config_dir: Path, config_name: str, overrides: list[str]) -> DictConfig:
    """For a sweep (`-m`): the config its trials start from (the overrides without swept
    values), checked as `compose_checked` does, and every key it searches (`key=a,b` given
    here, the sweeper's `params`) a setting of that config; else a one-line UserError."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        raise UserError(explain(err, config_dir, config_name, overrides)) from None
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    cfg = compose_checked(config_dir, config_name, fixed, with_hydra=True)
    searched = [o.key_or_group for o in parsed if o.is_sweep_override()]
    searched += [str(key) for key in OmegaConf.select(cfg, "hydra.sweeper.params") or {}]
    absent = object()
    for key in searched:
        if "." in key and OmegaConf.select(cfg, key, default=absent) is absent:
            raise UserError(f"the search space: {unknown_key(key, config_dir, config_name, fixed)}")
    return cfg


def explain(err: Exception, config_dir: Path, config_name: str, overrides: list[str]) -> str:
    text = str(err)
    unknown = re.search(r"Could not override '([^']+)'", text) or re.search(
        r"Key '[^']+' is not in struct\s+full_key: (\S+)", text
    )
    if unknown:
        return unknown_key(unknown.group(1), config_dir, config_name, overrides)
    missing = re.search(r"Could not find '([^'/]+)/([^']+)'", text)
    if missing:
        group, option = missing.groups()
        choices = re.findall(r"^\t(\S+)$", text, flags=re.MULTILINE)
        listed = f"; choose one of: {', '.join(choices)}" if choices else ""
        return f"{group}={option}: no such {group} option{listed}"
    override = getattr(err, "override", None)
    if override is not None:  # the override grammar: quote values with odd characters
        return f"cannot parse the override {override!r}: {text.strip().splitlines()[0]}"
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(err).__name__


def unknown_key(key: str, config_dir: Path, config_name: str, overrides: list[str]) -> str:
    """`key: no such setting`, with the closest existing key of its section."""
    if key in MOVED:
        return f"{key}: no such setting; {MOVED[key]}"
    parent, _, leaf = key.rpartition(".")
    groups = [o for o in overrides if re.fullmatch(r"[\w/]+=[\w.\-/]+", o)]
    try:
        node = OmegaConf.select(compose(config_dir, config_name, groups), parent or ".")
    except Exception:  # a group option that does not exist either: no suggestion
        node = None
    names = [str(k) for k in node] if isinstance(node, DictConfig) else []
    close = difflib.get_close_matches(leaf, names, n=1, cutoff=0.6)
    prefix = f"{parent}." if parent else ""
    if close:
        hint = f"did you mean {prefix}{close[0]}?"
    elif names:
        hint = f"{parent or 'the config'} has: {', '.join(names[:20])}"
    else:
        hint = f"add a new one with +{key}=VALUE"
    return f"{key}: no such setting; {hint}"


def check_values(cfg: DictConfig) -> None:
    """Whole numbers and numbers where the config expects them, in range (one line each)."""
    rules = [(key, rule) for rule, keys in VALUE_RULES.items() for key in keys]
    for key, (kind, smallest) in rules:
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if value is None or (key in AUTO_ALLOWED and value == "auto"):
            continue
        what = "a whole number" if kind is int else "a number"
        wrong_type = isinstance(value, bool) or not isinstance(value, (int, float))
        if not wrong_type and kind is int and not float(value).is_integer():
            wrong_type = True
        if wrong_type or value < smallest:
            alternative = " or auto" if key in AUTO_ALLOWED else ""
            raise UserError(f"{key}={value!r}: must be {what} >= {smallest:g}{alternative}")


def check_target_types(cfg: DictConfig, built_as: dict | None = None) -> None:
    """The schema of the objects built from the config: each setting of a section built by
    one of imgclf's own classes or functions (`_target_: imgclf....`) has the type of that
    parameter (its type hint), else a one-line error naming the key. A number where text is
    expected is accepted (the object takes it as text), as a structured config would.
    `built_as`: see `compose_checked`."""
    built_as = built_as or {}
    for path, target, names in target_sections(OmegaConf.to_container(cfg, resolve=False)):
        section = next((s for s in built_as if path == s or path.startswith(s + ".")), None)
        if section is not None:
            if built_as[section] is None:
                continue
            target = built_as[section]
        hints = parameter_hints(target)
        for name in (n for n in names if n in hints):
            key = f"{path}.{name}" if path else name
            try:
                value = OmegaConf.select(cfg, key, throw_on_missing=True)
            except Exception:  # an interpolation only Hydra's run can resolve
                continue
            if OmegaConf.is_config(value):
                value = OmegaConf.to_container(value, resolve=True)
            if not (conforms(value, hints[name]) or number_as_text(value, hints[name])):
                wanted = " or ".join(type_names(hints[name]))
                raise UserError(f"{key}={value!r}: must be {wanted}")


def number_as_text(value, hint) -> bool:
    """A number given where text (a name) is expected: the object takes str(value)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and conforms("text", hint)


def target_sections(node, path: str = ""):
    """(key, target, setting names) of each mapping in `node` whose `_target_` is imgclf's."""
    if isinstance(node, dict):
        target = node.get("_target_")
        if isinstance(target, str) and target.startswith("imgclf."):
            yield path, target, [str(k) for k in node if not str(k).startswith("_")]
        for key, child in node.items():
            yield from target_sections(child, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from target_sections(child, f"{path}.{index}" if path else str(index))


def parameter_hints(target: str) -> dict:
    """The type hints of the parameters of the class or function `target` names ({} if it
    cannot be imported: instantiating it then says why)."""
    import inspect
    import typing

    from hydra.utils import get_object

    try:
        built = get_object(target)
        function = built.__init__ if inspect.isclass(built) else built
        return typing.get_type_hints(function)
    except Exception:
        return {}


def check_stage_types(cfg: DictConfig) -> None:
    """Each recipe stage's values have the types of the Stage dataclass's fields."""
    import typing

    stages = OmegaConf.select(cfg, "recipe.stages", default=None)
    if stages is None:
        return
    from imgclf.training.recipe import Stage

    hints = typing.get_type_hints(Stage)
    for index, stage in enumerate(OmegaConf.to_container(stages, resolve=True)):
        for key, value in (stage or {}).items() if isinstance(stage, dict) else ():
            if key in hints and not conforms(value, hints[key]):
                wanted = " or ".join(type_names(hints[key]))
                raise UserError(f"recipe.stages.{index}.{key}={value!r}: must be {wanted}")


def conforms(value, hint) -> bool:
    """Whether a config value fits a type hint (int, float, str, bool, Path, X | None,
    list[X], Sequence[X], Literal[...]); a hint of any other kind is not checked."""
    import types
    import typing
    from collections.abc import Sequence

    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(conforms(value, arm) for arm in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin in (list, tuple, Sequence):
        (item, *_) = typing.get_args(hint) or (object,)
        return isinstance(value, list) and all(conforms(v, item) for v in value)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is Path:
        return isinstance(value, str)
    if not isinstance(hint, type) or hint is object:
        return True
    return isinstance(value, hint)


PLURALS = {"a whole number": "whole numbers", "a number": "numbers", "a path": "paths"}


def type_names(hint) -> list[str]:
    import typing
    from collections.abc import Sequence

    args, origin = typing.get_args(hint), typing.get_origin(hint)
    if origin in (list, tuple, Sequence):
        items = [PLURALS.get(name, name) for name in type_names(args[0])]
        return [f"a list of {' or '.join(items)}"]
    if origin is typing.Literal:
        return [" or ".join(repr(arg) for arg in args)]
    if args:
        return list(dict.fromkeys(name for arm in args for name in type_names(arm)))
    names = {int: "a whole number", float: "a number", str: "text", bool: "true or false"}
    names[Path] = "a path"
    return [names.get(hint, "null" if hint is type(None) else getattr(hint, "__name__", str(hint)))]


def check_input_sizes(cfg: DictConfig) -> None:
    """An input size whose square image is above data.max_pixels could never be decoded or
    allocated (100000 px: 30 GB a batch image): one line now instead of a crash later."""
    limit = OmegaConf.select(cfg, "data.max_pixels", default=None)
    if not isinstance(limit, int) or isinstance(limit, bool):
        return
    keys = ["data.image_size"]
    stages = OmegaConf.select(cfg, "recipe.stages", default=None) or []
    keys += [f"recipe.stages.{i}.image_size" for i in range(len(stages))]
    for key in keys:
        size = OmegaConf.select(cfg, key, default=None)
        if isinstance(size, int) and not isinstance(size, bool) and size * size > limit:
            raise UserError(
                f"{key}={size}: a {size}x{size} input is above data.max_pixels {limit:,} "
                "(the largest image the data may hold)"
            )


# Keys that take true or false (a typo such as exist_ok=yes would count as true).
SWITCHES = ("exist_ok",)


def check_switches(cfg: DictConfig) -> None:
    for key in SWITCHES:
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not isinstance(value, bool):
            raise UserError(f"{key}={value!r}: must be true or false")
