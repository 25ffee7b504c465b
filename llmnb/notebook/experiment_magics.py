"""IPython magics for trying one idea against another: thin skins over `llmnb.compare` and
`llmnb.lr_find`.

    %compare ft_full ft_lora [--names full,LoRA] [--metric accuracy] [--name cmp]
    %lr_find [MODEL] DATA [--num-steps 100] [--start-lr 1e-7] [--end-lr 1] [--lora] ... [--name finder]

`%lr_find` takes every `%finetune` option (the sweep must train what the run will train: the same
batch size, strategy, max_length...). Mistakes become one-line `UsageError`s.
"""
from __future__ import annotations

from pathlib import Path

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from llmnb.errors import ConfigError, LlmnbError
from llmnb.finetuning.config import FineTuneConfig
from llmnb.notebook.magics import LlmnbMagics, config_arguments, options_given
from llmnb.notebook.magics import register as register_training_magics


@magics_class
class ExperimentMagics(Magics):
    _resolve_data = LlmnbMagics._resolve_data  # a notebook variable, a file or a bundled name
    _model_and_data = LlmnbMagics._model_and_data  # [MODEL] DATA, as %finetune reads them

    @magic_arguments()
    @argument("runs", metavar="RUN", nargs="+",
              help="Results in the notebook (ft, ft_lora...) or run names/folders (see llmnb.runs()).")
    @argument("--names", metavar="A,B", default=None, help="Labels for the runs, comma-separated (default: what differs).")
    @argument("--metric", metavar="NAME", default=None, help="Metric to compare (default: the first run's).")
    @argument("--name", metavar="VAR", default="comparison", help="Variable that receives the comparison. Default: comparison.")
    @no_var_expand
    @line_magic
    def compare(self, line):
        """Runs side by side: loss and metric curves against step and wall time, and one table.

        Examples:
            %compare ft_full ft_frozen ft_lora
            %compare ft minilm-003 --names today,yesterday
        """
        from llmnb.core.result import TrainResult
        from llmnb.tools.compare import compare

        try:
            args = parse_argstring(self.compare, line)
        except ConfigError as e:
            raise UsageError(str(e)) from None
        if not args.name.isidentifier():
            raise UsageError(f"--name {args.name!r} is not a valid Python variable name.")
        runs = []
        for given in args.runs:
            value = self.shell.user_ns.get(given)
            if isinstance(value, TrainResult):
                runs.append(value)
            elif value is not None and not Path(given).exists():
                raise UsageError(f"`{given}` is a {type(value).__name__}, not a training result: give results such "
                                 "as ft (from %finetune or %pretrain) or run names from llmnb.runs().")
            else:
                runs.append(given)  # a run name or folder: load_run says if there is none
        try:
            comparison = compare(*runs, names=args.names, metric=args.metric)
        except LlmnbError as e:
            raise UsageError(str(e)) from None
        self.shell.user_ns[args.name] = comparison
        return comparison

    @magic_arguments()
    @argument("model_or_data", metavar="MODEL", nargs="?", help="Model alias, Hub id or folder (default: minilm).")
    @argument("data", metavar="DATA", nargs="?", help="Training data: a variable, a file, or a bundled name like reviews.")
    @argument("--num-steps", dest="num_steps", type=int, default=100, help="Most steps of the sweep. Default: 100.")
    @argument("--start-lr", dest="start_lr", type=float, default=1e-7, help="First learning rate. Default: 1e-7.")
    @argument("--end-lr", dest="end_lr", type=float, default=1.0, help="Last learning rate. Default: 1.")
    @argument("--name", metavar="VAR", default="finder", help="Variable that receives the sweep. Default: finder.")
    @argument("--quiet", dest="quiet", action="store_const", const=True, default=None, help="Print nothing.")
    @config_arguments(FineTuneConfig)
    @no_var_expand
    @line_magic
    def lr_find(self, line):
        """A learning-rate range test: the smoothed loss against an exponentially growing lr, and a
        suggestion (the lr at the minimum ÷ 10). Your model and data are not changed.

        Examples:
            %lr_find reviews
            %lr_find minilm train_df --lora --num-steps 60
        Then: %finetune minilm train_df --lr find   (runs the sweep and trains with its suggestion)
        """
        from llmnb.tools.lr_find import lr_find

        try:
            args = parse_argstring(self.lr_find, line)
            options = options_given(args, FineTuneConfig)
        except ConfigError as e:
            raise UsageError(str(e)) from None
        if not args.name.isidentifier():
            raise UsageError(f"--name {args.name!r} is not a valid Python variable name.")
        model, train = self._model_and_data(args, "lr_find", "sweep")
        try:
            finder = lr_find(model, train, start_lr=args.start_lr, end_lr=args.end_lr, num_steps=args.num_steps, **options)
        except LlmnbError as e:
            raise UsageError(str(e)) from None
        self.shell.user_ns[args.name] = finder
        return finder


for _magic in (ExperimentMagics.compare, ExperimentMagics.lr_find):
    _magic.parser.allow_abbrev = False


def register(ipython):
    """`%load_ext llmnb`: every magic, these and those of notebook/magics.py."""
    register_training_magics(ipython)
    ipython.register_magics(ExperimentMagics)
