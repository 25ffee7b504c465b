"""IPython magics: thin skins over the public API.

    %finetune [MODEL] DATA [--eval DATA] [--epochs N] ... [--name VAR]
    %%finetune [MODEL] DATA            (options in the body, one `key: value` per line)
    %pretrain [CORPUS] [--steps N] [--width N] ... [--name VAR]
    %llm_load [MODEL] [--task T] [--num-labels N] [--name VAR]
    %explain [VAR] TEXT [--layer N] [--head H]
    %compare, %lr_find                 (notebook/experiment_magics.py)

Flags and their help come from the config's field metadata (`FineTuneConfig`,
`PretrainConfig`), so `%finetune?` and `%pretrain?` always match the API. Mistakes the API detects become one-line `UsageError`s (no traceback).
"""
from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from llmnb.core.config import unknown_option_message
from llmnb.core.task import DEFAULT_TASK
from llmnb.errors import ConfigError, LlmnbError
from llmnb.finetuning.config import FineTuneConfig
from llmnb.instruct.rewards import rewards_named
from llmnb.pretraining.config import PretrainConfig

# Options the magic spells differently from the config field.
FLAG_ONLY = {"plot", "quiet"}


def _converter(annotation: str, name: str):
    """Text -> the field's type; 'none' gives None for optional fields."""
    optional = "None" in annotation
    base = float if "float" in annotation else int if "int" in annotation else str

    def convert(text):
        if optional and str(text).strip().lower() in ("none", "null", "off"):
            return None
        if name == "lr" and str(text).strip().lower() == "find":
            return "find"  # --lr find: llmnb.lr_find picks it (finetune says which and why)
        if base is str:
            return str(text)
        try:
            number = float(text)
        except (TypeError, ValueError):
            if name == "lr":  # argparse shows this message as it is
                raise argparse.ArgumentTypeError(f"{text!r} is neither a number (e.g. 5e-5) nor 'find' (llmnb.lr_find picks it)") from None
            raise ConfigError(f"{name}={text!r} is not a number.") from None
        if base is int:
            if not number.is_integer():
                raise ConfigError(f"{name}={text!r} must be a whole number.")
            return int(number)
        return number

    convert.__name__ = base.__name__  # argparse names the type in its error messages
    return convert


def _flag_fields(config_class):
    """The fields a magic offers as flags (not the display switches, which it spells itself,
    nor tuples such as pretraining's prompts, which a flag cannot hold)."""
    by_name = {f.name: f for f in config_class.option_fields()}
    ordered = [by_name[name] for name in config_class.option_help()]  # grouped as in the README: data first
    return [f for f in ordered if f.name not in FLAG_ONLY and str(f.type) != "tuple"]


def config_arguments(config_class, aliases=None):
    """A decorator adding one --flag per config field, with the field's help text and default.

    aliases: extra spellings, e.g. {"max_steps": "--steps"}.
    """
    aliases = aliases or {}

    def decorate(func):
        for f in reversed(_flag_fields(config_class)):
            spellings = [config_class.magic_flag(f.name)] + ([aliases[f.name]] if f.name in aliases else [])
            helptext = config_class.help_of(f)
            if str(f.type) == "bool":
                func = argument(*spellings, dest=f.name, action="store_const", const=not f.default, default=None, help=helptext)(func)
            else:
                # SUPPRESS, not None: "--early-stopping none" must reach the config as None, and an
                # absent flag must not appear at all.
                func = argument(*spellings, dest=f.name, type=_converter(str(f.type), f.name), default=argparse.SUPPRESS,
                                metavar=f.name.upper(), help=f"{helptext} Default: {f.default}.")(func)
        return func

    return decorate


def options_given(args, config_class) -> dict:
    """The config options a parsed magic line set (flags left out are not in it)."""
    given, options = vars(args), {}
    for f in config_class.option_fields():
        if f.name not in given:
            continue  # an absent value flag (argparse.SUPPRESS)
        if given[f.name] is None and (f.name in BOOL_FIELDS or f.name in FLAG_ONLY):
            continue  # a switch that was not given
        options[f.name] = given[f.name]
    return options


CONVERTERS = {f.name: _converter(str(f.type), f.name) for f in FineTuneConfig.option_fields() if str(f.type) != "bool"}
BOOL_FIELDS = {f.name for f in FineTuneConfig.option_fields() if str(f.type) == "bool"} | {
    f.name for f in PretrainConfig.option_fields() if str(f.type) == "bool"}


def _body_options(cell: str) -> dict:
    """`key: value` lines of a %%finetune body -> config overrides."""
    known = {f.name for f in FineTuneConfig.option_fields()} | {"eval", "name", "resume", "export"}
    options = {}
    for number, raw in enumerate(cell.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if ":" not in line:
            raise UsageError(f"Line {number} of the cell, {raw.strip()!r}, is not 'key: value' (e.g. 'epochs: 3').")
        key, value = (part.strip() for part in line.split(":", 1))
        key = key.lstrip("-").replace("-", "_")
        if key.startswith("no_") and key[3:] in BOOL_FIELDS | FLAG_ONLY:
            key, value = key[3:], "false"
        if key not in known:
            raise UsageError(f"Line {number} of the cell: " + unknown_option_message([key], known))
        if key in BOOL_FIELDS | FLAG_ONLY:
            if value.lower() not in ("true", "false", "yes", "no", "1", "0", "on", "off"):
                raise UsageError(f"Line {number} of the cell: {key} takes true or false, not {value!r}.")
            options[key] = value.lower() in ("true", "yes", "1", "on")
        elif key in CONVERTERS:
            options[key] = CONVERTERS[key](value)
        else:
            options[key] = value
    return options


@magics_class
class LlmnbMagics(Magics):
    def _resolve_data(self, name: str | None, what: str):
        """A variable in the notebook, a file path, or a bundled data set name."""
        import llmnb.datasets as datasets

        if name is None:
            return None
        if name in self.shell.user_ns:
            return self.shell.user_ns[name]
        if Path(name).expanduser().exists() or name in datasets.names():
            return name
        hidden = getattr(self.shell, "user_ns_hidden", {})  # IPython's own In, Out, ...
        variables = [k for k, v in self.shell.user_ns.items()
                     if not k.startswith("_") and k not in hidden and type(v).__name__ in ("DataFrame", "Dataset", "list", "dict")]
        hint = f" Variables that could hold data: {', '.join(sorted(variables)[:8])}." if variables else ""
        raise UsageError(
            f"No variable, file or bundled data set called '{name}' for the {what}. Define it in the notebook, "
            f"give a file path, or use a bundled set ({', '.join(datasets.names())}).{hint}"
        )

    def _model_and_data(self, args, magic: str, verb: str):
        """(model, training data) from `[MODEL] DATA`: MODEL defaults to minilm; a variable's value
        (a LoadedModel or earlier result) is used for MODEL when one has that name."""
        model, data = args.model_or_data, args.data
        if data is None:
            model, data = "minilm", model
        if data is None:
            raise UsageError(f"Say what to {verb} on: %{magic} [MODEL] DATA, e.g. %{magic} minilm reviews. See %{magic}?")
        train = self._resolve_data(data, "training data")
        if isinstance(model, str) and model in self.shell.user_ns and not Path(model).exists():
            model = self.shell.user_ns[model]
        return model, train

    def _expand_names(self, line: str) -> str:
        """Replace {name} and $name by the value of that notebook variable.

        IPython's own expansion would evaluate any expression inside braces; here only plain
        variable names are looked up, so nothing in a magic line is ever run as code.
        """
        def value(match):
            name = match.group(1) or match.group(2)
            if name not in self.shell.user_ns:
                raise UsageError(f"{match.group(0)} in the magic line: no variable called '{name}' in the notebook.")
            return shlex.quote(str(self.shell.user_ns[name]))

        if re.search(r"\{(?![A-Za-z_]\w*\})[^}]*\}", line):
            raise UsageError("Only {variable_name} can stand in braces in a %finetune line; expressions are not run.")
        return re.sub(r"\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)", value, line)

    @magic_arguments()
    @argument("model_or_data", metavar="MODEL", nargs="?", help="Model alias, Hub id or folder (default: minilm).")
    @argument("data", metavar="DATA", nargs="?", help="Training data: a variable, a file, or a bundled name like reviews.")
    @argument("--eval", metavar="DATA", default=None, help="Validation data (a variable, file or bundled name).")
    @argument("--name", metavar="VAR", default="ft", help="Variable that receives the result. Default: ft.")
    @argument("--no-plot", dest="plot", action="store_const", const=False, default=None, help="No live plot.")
    @argument("--quiet", dest="quiet", action="store_const", const=True, default=None, help="Print nothing.")
    @argument("--resume", metavar="DIR", nargs="?", const=True, default=None,
              help="Continue an earlier run from its last checkpoint: its folder, or nothing for this model's newest run.")
    @argument("--export", metavar="PATH", default=None,
              help="After training, write PATH (a .py script), its train_config.json and the data beside it: the same run "
                   "for torchrun --nproc_per_node=N or accelerate launch (see llmnb.export_script).")
    @config_arguments(FineTuneConfig)
    @no_var_expand
    @line_cell_magic
    def finetune(self, line, cell=None):
        """Fine-tune a model on data in one line; the result goes to a variable (default `ft`).

        Examples:
            %finetune reviews                          (the bundled MiniLM on the bundled reviews)
            %finetune minilm train_df --eval test_df --epochs 3
            %%finetune minilm train_df
            eval: test_df
            lr: 5e-5

        Press the kernel's stop button (or Ctrl-C) to stop early: the result variable still
        gets the best weights so far. Same options as llmnb.finetune(...).
        """
        from llmnb.errors import TrainingError
        from llmnb.finetuning.finetune import finetune

        line = self._expand_names(line)
        try:
            args = parse_argstring(self.finetune, line)
            options = options_given(args, FineTuneConfig)
            body = _body_options(cell) if cell else {}
        except ConfigError as e:
            raise UsageError(str(e)) from None
        name = body.pop("name", None) or args.name
        eval_name = body.pop("eval", None) or args.eval
        resume = body.pop("resume", None) or args.resume
        export = body.pop("export", None) or args.export
        options.update(body)
        for key in [k for k in ("reward", "eval_reward") if isinstance(options.get(k), str)]:  # a notebook function by name
            options[key] = rewards_named(options[key], self.shell.user_ns)
        if export is not None and not str(export).endswith(".py"):
            raise UsageError(f"--export {export}: give the path of a .py file to write, e.g. --export job/train.py.")
        if not name.isidentifier():
            raise UsageError(f"--name {name!r} is not a valid Python variable name.")
        model, train = self._model_and_data(args, "finetune", "train")
        evaluation = self._resolve_data(eval_name, "eval data")
        try:
            result = finetune(model, train, eval=evaluation, resume=resume, **options)
        except TrainingError as e:
            if getattr(e, "result", None) is not None:
                self.shell.user_ns[name] = e.result
            raise UsageError(f"{e} The result is in `{name}`.") from None
        except LlmnbError as e:
            raise UsageError(str(e)) from None
        self.shell.user_ns[name] = result
        if not result.config.quiet:
            print(f"llmnb: result in `{name}`: {name}.predict(texts), {name}.metrics, {name}.history, {name}.save(folder)")
        if export is not None:
            from llmnb.tools.export import export_script

            try:
                script = export_script(result, export, data=train, eval=evaluation)
            except LlmnbError as e:
                raise UsageError(f"{e} (The training itself worked: the result is in `{name}`.)") from None
            if not result.config.quiet:
                print(f"llmnb: wrote {script} and its data; run it there with: torchrun --nproc_per_node=2 {script.name}")

    @magic_arguments()
    @argument("corpus", metavar="CORPUS", nargs="?", default=None,
              help="Text to pretrain on: a notebook variable (list of strings, str), a .txt file, or 'stories' "
                   "(the default: short stories llmnb builds, see llmnb.datasets.stories).")
    @argument("--name", metavar="VAR", default="gpt", help="Variable that receives the result. Default: gpt.")
    @argument("--no-plot", dest="plot", action="store_const", const=False, default=None, help="No live plot.")
    @argument("--quiet", dest="quiet", action="store_const", const=True, default=None, help="Print nothing.")
    @config_arguments(PretrainConfig, aliases={"max_steps": "--steps", "vocab_size": "--vocab", "block_size": "--block"})
    @no_var_expand
    @line_magic
    def pretrain(self, line):
        """Pretrain a small GPT and its tokenizer from scratch; the result goes to a variable (default `gpt`).

        Examples:
            %pretrain                                  (the stories llmnb builds; fast profile: about a minute)
            %pretrain my_texts --steps 1000 --width 256
            %pretrain book.txt --block 128 --name book_gpt

        Then gpt.generate("Once upon a time"), gpt.samples_before, gpt.start_perplexity,
        gpt.final_perplexity, gpt.history, gpt.save(folder). Ctrl-C stops early and keeps the
        best weights so far. Same options as llmnb.pretrain(...) (see llmnb.PretrainConfig).
        """
        from llmnb.errors import TrainingError
        from llmnb.pretraining.corpus import BUNDLED
        from llmnb.pretraining.run import pretrain as run_pretrain

        try:
            args = parse_argstring(self.pretrain, self._expand_names(line))
            options = options_given(args, PretrainConfig)
        except ConfigError as e:
            raise UsageError(str(e)) from None
        if not args.name.isidentifier():
            raise UsageError(f"--name {args.name!r} is not a valid Python variable name.")
        corpus = args.corpus
        if corpus is not None and corpus in self.shell.user_ns:
            corpus = self.shell.user_ns[corpus]
        elif corpus is not None and corpus != BUNDLED and not Path(corpus).expanduser().is_file():
            hidden = getattr(self.shell, "user_ns_hidden", {})
            texts = [k for k, v in self.shell.user_ns.items()
                     if not k.startswith("_") and k not in hidden and isinstance(v, (list, str))]
            hint = f" Variables that could hold text: {', '.join(sorted(texts)[:8])}." if texts else ""
            raise UsageError(
                f"No variable or file called '{corpus}' to pretrain on. Define it in the notebook (a list of strings "
                f"or a str), give a .txt file path, or leave it out for the bundled '{BUNDLED}'.{hint}"
            )
        try:
            result = run_pretrain(corpus, **options)
        except TrainingError as e:
            if getattr(e, "result", None) is not None:
                self.shell.user_ns[args.name] = e.result
            raise UsageError(f"{e} The result is in `{args.name}`.") from None
        except LlmnbError as e:
            raise UsageError(str(e)) from None
        self.shell.user_ns[args.name] = result
        if not result.config.quiet:
            n = args.name
            print(f"llmnb: result in `{n}`: {n}.generate(prompt), {n}.samples_before, {n}.final_perplexity, {n}.history, {n}.save(folder)")

    @magic_arguments()
    @argument("model", metavar="MODEL", nargs="?", default="minilm", help="Alias, Hub id or folder. Default: minilm.")
    @argument("--task", default=DEFAULT_TASK, help="The head, by task: any task of %%finetune (e.g. classification, regression) or encoder (no head).")
    @argument("--num-labels", type=int, default=2, help="Classes of the classification head. Default: 2.")
    @argument("--device", default="auto", help="auto, cpu, cuda or mps.")
    @argument("--trust-remote-code", action="store_true", help="Run model code from the Hub (only for trusted models).")
    @argument("--name", metavar="VAR", default="lm", help="Variable that receives the model. Default: lm.")
    @line_magic
    def llm_load(self, line):
        """Load a model and its tokenizer into a variable (default `lm`; unpack with `model, tok = lm`)."""
        from llmnb.core.models import load_model

        args = parse_argstring(self.llm_load, line)
        if not args.name.isidentifier():
            raise UsageError(f"--name {args.name!r} is not a valid Python variable name.")
        try:
            loaded = load_model(args.model, task=args.task, num_labels=args.num_labels, device=args.device, trust_remote_code=args.trust_remote_code)
        except LlmnbError as e:
            raise UsageError(str(e)) from None
        self.shell.user_ns[args.name] = loaded
        print(f"llmnb: {loaded.summary()} -> `{args.name}`")


    @no_var_expand
    @line_magic
    def explain(self, line):
        """Which tokens made the model decide, and where it looks.

            %explain [VAR] TEXT [--layer N] [--head H] [--target LABEL]

        VAR is a FineTuneResult or LoadedModel in the notebook (default: ft). The text needs no
        quotes. Shows the tokens coloured by gradient x input saliency and the attention map of
        one layer (default: the last; one head, or the mean of all). Examples:
            %explain The staff were lovely but the room was dirty.
            %explain ft2 It doesn't work. --layer 0 --head 3
        """
        from llmnb.core.models import LoadedModel
        from llmnb.finetuning.result import FineTuneResult
        from llmnb.tools.interpret import explain

        # Parsed by hand, not with argparse: the text must not need quotes ("doesn't").
        options, words, tokens = {"layer": -1, "head": None, "target": None}, [], line.split()
        while tokens:
            token = tokens.pop(0)
            if re.fullmatch(r"--[a-z][\w-]*", token):
                if token[2:] not in options:
                    raise UsageError(f"Unknown flag {token}: %explain takes --layer, --head and --target. See %explain?")
                if not tokens:
                    raise UsageError(f"{token} needs a value, e.g. {token} 0.")
                options[token[2:]] = tokens.pop(0)
            else:
                words.append(token)
        for key in ("layer", "head"):
            if isinstance(options[key], str):
                try:
                    options[key] = int(options[key])
                except ValueError:
                    raise UsageError(f"--{key} takes a whole number (0 is the first, -1 the last), not {options[key]!r}.") from None
        source = "ft"
        if len(words) > 1 and isinstance(self.shell.user_ns.get(words[0]), (FineTuneResult, LoadedModel)):
            source = words.pop(0)
        text = " ".join(words).strip().strip("\"'")
        if not text:
            raise UsageError("Give the text to explain: %explain [VAR] TEXT, e.g. %explain The room was lovely.")
        if source not in self.shell.user_ns:
            raise UsageError("Nothing called `ft` to explain: fine-tune first (%finetune ...) or name the variable: %explain VAR TEXT.")
        try:
            return explain(self.shell.user_ns[source], text, **options)
        except LlmnbError as e:
            raise UsageError(str(e)) from None


# A typo such as --epoch must be an error, not silently taken as --epochs (argparse would
# accept the prefix; IPython's parser class does not take allow_abbrev in its constructor).
for _magic in (LlmnbMagics.finetune, LlmnbMagics.llm_load, LlmnbMagics.pretrain):
    _magic.parser.allow_abbrev = False


def register(ipython):
    ipython.register_magics(LlmnbMagics)
