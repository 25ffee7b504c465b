"""`llmnb.pretrain`: a tokenizer and a small GPT trained from nothing on a text corpus.

    gpt = llmnb.pretrain()                              # the stories llmnb builds (llmnb.corpus)
    gpt = llmnb.pretrain("my_book.txt", width=256, max_steps=2000)
    gpt = llmnb.pretrain(list_of_texts, config=llmnb.PretrainConfig(layers=4))
    gpt.samples_before          # what the untrained model wrote (random tokens)
    gpt.generate("Once upon a time")
    gpt.start_perplexity, gpt.final_perplexity
    gpt.save("my-gpt")          # safetensors + tokenizer: AutoModelForCausalLM / AutoTokenizer load it

Order of work: check options -> read the corpus -> hold out validation documents -> train a
byte-level BPE tokenizer (the `tokenizers` library) on the training documents -> tokenize and
pack into blocks of `block_size` tokens -> build `GPT2LMHeadModel` from a config (random
weights) -> sample from it -> train with `llmnb.engine.Engine` (the same loop, display and
Ctrl-C handling as `finetune`), evaluating the validation loss and perplexity at step 0 and
every `eval_every` steps -> sample again.

Perplexity is exp(mean validation loss per token): "as unsure as a choice among that many
tokens". An untrained model is about as unsure as a uniform guess, so it starts near the
vocabulary size; the headline number of the run is how far it falls.
"""
from __future__ import annotations

import contextlib
import html
import json
import math
import os
import shutil
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .config import DEVICES, PRECISIONS, _check_choice, _check_number, _unknown_message
from .errors import ConfigError, DataError
from .events import FAILED, INTERRUPTED, Callback, TrainState

EOS = "<|endoftext|>"  # separates documents; also the padding and start-of-text token
BUNDLED = "stories"  # the corpus llmnb builds itself (llmnb.corpus.build_corpus)
DEFAULT_PROMPTS = ("Once upon a time", "One day, Tom went to the park", '"Look at my')
MAX_EVAL_TOKENS = 32_768  # validation is capped so that evaluating a big corpus stays cheap
META_FILE = "llmnb.json"

# Steps when max_steps is not given, by LLMNB_PROFILE. "fast" fits a tutorial on a 2-core CPU:
# with the default model and corpus, 200 steps took 17-19 s of CPU time (44-55 s of wall time on
# a machine busy with other jobs, load average 8-9) and took validation perplexity from 1012 to
# 2.3. "full" trains 7.5x longer (a few minutes on a CPU; a GPU, which device="auto" picks, is faster).
PROFILE_STEPS = {"fast": 200, "full": 1500}


def profile() -> str:
    """The sizing profile from the environment variable LLMNB_PROFILE: fast or full (default)."""
    value = os.environ.get("LLMNB_PROFILE", "full").strip().lower() or "full"
    return value if value in PROFILE_STEPS else "full"


def _opt(default, help, **meta):
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class PretrainConfig:
    # The corpus
    corpus_chars: int = _opt(400_000, "Characters of text to build when the corpus is the bundled stories.")
    eval_fraction: float = _opt(0.05, "Share of the documents held out (seeded) to measure validation perplexity.")
    # The tokenizer and the model
    vocab_size: int = _opt(1000, "Tokens in the byte-level BPE vocabulary trained on the corpus (>= 260).")
    layers: int = _opt(2, "Transformer blocks of the GPT.")
    width: int = _opt(128, "Hidden size of the GPT (a multiple of heads).")
    heads: int = _opt(4, "Attention heads per block.")
    block_size: int = _opt(64, "Tokens of context the model sees; the corpus is cut into blocks this long.")
    dropout: float = _opt(0.0, "Dropout in the GPT (0 suits short runs on small models).")
    # How long and how fast
    max_steps: int | None = _opt(None, "Optimizer steps (default: 200 in the fast profile, 1500 in full; LLMNB_PROFILE).")
    batch_size: int = _opt(16, "Blocks per optimizer step.")
    lr: float = _opt(6e-3, "Peak learning rate of AdamW (small models trained from scratch take large ones).")
    warmup: float = _opt(0.1, "Fraction of steps over which the learning rate rises linearly from 0 (less made the loss spike).")
    schedule: str = _opt("cosine", "Learning-rate decay after warmup: linear, cosine or constant.")
    weight_decay: float = _opt(0.01, "AdamW weight decay (not applied to biases and LayerNorm).")
    grad_clip: float | None = _opt(1.0, "Clip the gradient norm to this value (none to disable).")
    # Evaluation
    eval_every: int | None = _opt(None, "Evaluate every N steps (default: 10 evaluations per run, plus one at step 0).")
    early_stopping: int | None = _opt(None, "Stop after this many evaluations without improvement (none: never).")
    prompts: tuple = _opt(DEFAULT_PROMPTS, "Prompts sampled before and after training (samples_before / samples_after).")
    # Machinery
    seed: int = _opt(0, "Random seed for the corpus, the split, the weights and the batch order.")
    device: str = _opt("auto", "Where to train: auto (GPU when present), cpu, cuda or mps.")
    precision: str = _opt("auto", "Number format: auto (bf16 where it pays, fp16 only on CUDA), fp32, bf16, fp16.")
    log_every: int | None = _opt(None, "Record the training loss every N steps (default: about 100 points per run).")
    threads: int | None = _opt(
        None, "CPU threads while training (default: the cores not busy with other work, from the load average; at least 1)."
    )
    # Display
    plot: bool = _opt(True, "Show the live training curve.")
    quiet: bool = _opt(False, "Print nothing (no progress, no plot, no samples): for graded or batch runs.")

    def __post_init__(self):
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("device", self.device, DEVICES)
        _check_choice("schedule", self.schedule, ("linear", "cosine", "constant"))
        _check_number("corpus_chars", self.corpus_chars, minimum=1000, integer=True)
        _check_number("eval_fraction", self.eval_fraction, minimum=0, maximum=0.5, exclusive=True)
        _check_number("vocab_size", self.vocab_size, minimum=260, maximum=1_000_000, integer=True)
        _check_number("layers", self.layers, minimum=1, maximum=96, integer=True)
        _check_number("width", self.width, minimum=8, maximum=16384, integer=True)
        _check_number("heads", self.heads, minimum=1, integer=True)
        _check_number("block_size", self.block_size, minimum=8, maximum=8192, integer=True)
        _check_number("dropout", self.dropout, minimum=0, maximum=0.9)
        _check_number("batch_size", self.batch_size, minimum=1, integer=True)
        _check_number("lr", self.lr, minimum=0, exclusive=True)
        _check_number("warmup", self.warmup, minimum=0, maximum=1)
        _check_number("weight_decay", self.weight_decay, minimum=0)
        _check_number("seed", self.seed, minimum=0, integer=True)
        for name in ("max_steps", "eval_every", "early_stopping", "log_every", "threads"):
            if getattr(self, name) is not None:
                _check_number(name, getattr(self, name), minimum=1, integer=True)
        if self.grad_clip is not None:
            _check_number("grad_clip", self.grad_clip, minimum=0, exclusive=True)
        if self.width % self.heads:
            choices = [h for h in (1, 2, 4, 8, 16) if self.width % h == 0]
            raise ConfigError(
                f"width={self.width} is not a multiple of heads={self.heads}: each head gets width/heads dimensions. "
                f"Try heads={choices[-1]} or a width such as {self.heads * max(1, round(self.width / self.heads))}."
            )
        if isinstance(self.prompts, str):
            self.prompts = (self.prompts,)
        if not all(isinstance(p, str) for p in self.prompts):
            raise ConfigError(f"prompts={self.prompts!r} must be a list of strings.")
        self.prompts = tuple(self.prompts)
        if self.lr > 0.05:
            warnings.warn(f"lr={self.lr} is very high even for a small model from scratch; 1e-3 to 1e-2 is usual.")
        from .environment import quiet

        if quiet():
            self.quiet = True

    @property
    def steps(self) -> int:
        """max_steps, or the profile's default (LLMNB_PROFILE=fast|full)."""
        return self.max_steps or PROFILE_STEPS[profile()]

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **overrides) -> "PretrainConfig":
        """A new config with some fields changed; unknown names are an error."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(_unknown_message(unknown, known))
        return type(self)(**{**self.to_dict(), **overrides})

    def engine_config(self):
        """The `FineTuneConfig` the training engine reads (the loop's own options only)."""
        from .config import FineTuneConfig

        steps = self.steps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its lr warning is about fine-tuning, not pretraining
            return FineTuneConfig(
                max_length=self.block_size,
                max_steps=steps,
                batch_size=self.batch_size,
                lr=self.lr,
                warmup=self.warmup,
                schedule=self.schedule,
                weight_decay=self.weight_decay,
                grad_clip=self.grad_clip,
                eval_every=self.eval_every or max(1, steps // 10),
                early_stopping=self.early_stopping,
                seed=self.seed,
                device=self.device,
                precision=self.precision,
                log_every=self.log_every,
                save_checkpoints=False,
                plot=self.plot,
                quiet=self.quiet,
            )


def option_help() -> dict[str, tuple[object, str]]:
    """name -> (default, help) for every option, in declaration order."""
    return {f.name: (f.default, f.metadata["help"]) for f in fields(PretrainConfig)}


# ---------------------------------------------------------------------- corpus
def read_corpus(corpus=None, n_chars: int = 400_000, seed: int = 0) -> tuple[list[str], str]:
    """(documents, a short description) from any accepted corpus form.

    None or "stories": the stories llmnb builds (`llmnb.corpus.build_corpus`).
    A list/tuple of strings: one document each. A pandas DataFrame: its "text" column (or its
    only column). A path to a .txt file, or a str holding text: split into documents at
    "<|endoftext|>" when present, else at blank lines.
    """
    if corpus is None or (isinstance(corpus, str) and corpus == BUNDLED):
        from .corpus import build_corpus

        return build_corpus(n_chars=n_chars, seed=seed), f"the bundled stories (seed {seed})"
    if isinstance(corpus, os.PathLike) or (isinstance(corpus, str) and _looks_like_path(corpus)):
        path = Path(corpus).expanduser()
        if not path.is_file():
            raise DataError(
                f"No corpus file at '{corpus}'. Give a .txt file, a list of strings, a string of text, "
                f"or '{BUNDLED}' for the stories llmnb builds."
            )
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise DataError(f"The corpus file '{corpus}' is not UTF-8 text.") from None
        return _split_documents(text), f"{path.name}"
    if isinstance(corpus, str):
        return _split_documents(corpus), "the given text"
    if type(corpus).__name__ == "DataFrame":
        columns = list(corpus.columns)
        if "text" not in columns and len(columns) != 1:
            raise DataError(f"The corpus DataFrame needs a 'text' column (or a single column); it has: {', '.join(map(str, columns))}.")
        corpus = corpus["text" if "text" in columns else columns[0]].tolist()
    if isinstance(corpus, (list, tuple)) or type(corpus).__name__ in ("Series", "Dataset"):
        docs = list(corpus["text"] if type(corpus).__name__ == "Dataset" else corpus)
        bad = next((i for i, d in enumerate(docs) if not isinstance(d, str)), None)
        if bad is not None:
            raise DataError(f"The corpus must hold strings; item {bad} is a {type(docs[bad]).__name__}.")
        docs = [d for d in docs if d.strip()]
        return docs, f"{len(docs)} given documents"
    raise DataError(
        f"A corpus cannot be a {type(corpus).__name__}. Give a list of strings, a string, a .txt file path, "
        f"or '{BUNDLED}'."
    )


def _looks_like_path(text: str) -> bool:
    if "\n" in text or len(text) > 1000:
        return False
    return text.lower().endswith((".txt", ".md", ".text")) or Path(text).expanduser().is_file()


def _split_documents(text: str) -> list[str]:
    parts = text.split(EOS) if EOS in text else text.split("\n\n")
    return [p.strip() for p in parts if p.strip()]


def split_documents(docs: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, validation): a seeded share of the documents, at least one, at most half."""
    import random

    if len(docs) < 2:
        return list(docs), []  # one long text: the validation tokens are cut from its end instead
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    n_eval = min(len(docs) // 2, max(1, round(len(docs) * fraction)))
    held = set(order[:n_eval])
    return [d for i, d in enumerate(docs) if i not in held], [d for i, d in enumerate(docs) if i in held]


# ---------------------------------------------------------------------- tokenizer
def train_tokenizer(texts, vocab_size: int = 1000, min_frequency: int = 2, model_max_length: int | None = None):
    """A byte-level BPE tokenizer (as GPT-2's) trained on `texts`, as a `PreTrainedTokenizerFast`.

    Every byte is in the vocabulary, so any text encodes with no unknown token and decodes back
    exactly. "<|endoftext|>" is the only special token: end of document, padding and start of
    generation. The vocabulary can come out smaller than `vocab_size` when the corpus has
    fewer frequent pairs to merge.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise DataError("No text to train the tokenizer on.")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    extra = {"model_max_length": model_max_length} if model_max_length else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        bos_token=EOS,
        pad_token=EOS,
        unk_token=EOS,
        clean_up_tokenization_spaces=False,
        **extra,
    )


def encode_stream(tokenizer, docs: list[str]) -> list[int]:
    """All documents as one stream of token ids, each followed by <|endoftext|>."""
    eos = tokenizer.convert_tokens_to_ids(EOS)
    out: list[int] = []
    for ids in tokenizer(docs, add_special_tokens=False)["input_ids"] if docs else []:
        out.extend(ids)
        out.append(eos)
    return out


# ---------------------------------------------------------------------- result
@dataclass
class PretrainResult:
    """What `pretrain` returns and `%pretrain` binds to `gpt`."""

    model: object
    tokenizer: object
    config: PretrainConfig
    state: TrainState
    samples_before: dict = field(default_factory=dict)
    samples_after: dict = field(default_factory=dict)
    corpus_name: str = ""
    documents: int = 0
    train_tokens: int = 0
    eval_tokens: int = 0
    seconds: float = 0.0

    @property
    def status(self) -> str:
        return self.state.status

    @property
    def history(self):
        """One row per logged step, with eval_loss / eval_perplexity at evaluation steps (step 0 included)."""
        return self.state.history_frame()

    @property
    def evaluations(self) -> list[dict]:
        return [r for r in self.state.history if "eval_perplexity" in r]

    @property
    def metrics(self) -> dict[str, float]:
        """Validation loss and perplexity of the weights this result holds (the best evaluation)."""
        return self.state.best_metrics()

    @property
    def start_perplexity(self) -> float | None:
        """Validation perplexity of the untrained model (step 0)."""
        evals = self.evaluations
        return evals[0]["eval_perplexity"] if evals and evals[0]["step"] == 0 else None

    @property
    def final_perplexity(self) -> float | None:
        """Validation perplexity of the weights held (the best evaluation)."""
        return self.metrics.get("eval_perplexity")

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def generate(self, prompt: str = "", max_new_tokens: int = 40, temperature: float = 0.8, seed: int = 0, top_k: int | None = None) -> str:
        """The prompt followed by up to `max_new_tokens` sampled tokens (stops at end of text).

        temperature 0 picks the likeliest token each time; higher is more varied. The same
        seed gives the same text. An empty prompt starts a new document. The context is the
        last `block_size` tokens, the length the model was trained on.
        """
        with cpu_threads(auto_threads(next(self.model.parameters()).device)):
            return generate(self.model, self.tokenizer, prompt, max_new_tokens, temperature, seed, top_k, self.config.block_size)

    def save(self, directory) -> Path:
        """Write safetensors weights, the tokenizer and llmnb.json (options and perplexities).

        Reload with `transformers.AutoModelForCausalLM.from_pretrained(directory)` and
        `transformers.AutoTokenizer.from_pretrained(directory)`.
        """
        from .checkpoint import ensure_writable
        from .models import quiet_transformers

        out = ensure_writable(directory)
        staging = out / ".saving"  # written beside, then moved in: a crash leaves the old files whole
        shutil.rmtree(staging, ignore_errors=True)
        with quiet_transformers():
            self.model.save_pretrained(staging, safe_serialization=True)
            self.tokenizer.save_pretrained(staging)
        from . import __version__

        meta = {
            "llmnb_version": __version__,
            "kind": "pretrained GPT",
            "corpus": self.corpus_name,
            "metrics": self.metrics,
            "start_perplexity": self.start_perplexity,
            "status": self.status,
            "steps": self.state.step,
            "config": self.config.to_dict(),
        }
        (staging / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
        for item in staging.iterdir():
            os.replace(item, out / item.name)
        staging.rmdir()
        return out

    def plot(self, path=None):
        """Loss, perplexity and learning-rate curves as a matplotlib Figure (PNG at `path` if given)."""
        from .display.plot import plot_history

        return plot_history(self.state.history, metric_name="eval_perplexity", path=path, best_step=self.state.best_step)

    def __repr__(self):
        return (
            f"PretrainResult(GPT {self.config.layers}x{self.config.width}, {self.status} at step {self.state.step}/"
            f"{self.state.max_steps}, perplexity {_num(self.start_perplexity)} -> {_num(self.final_perplexity)})"
        )

    def _repr_html_(self):
        c = self.config
        rows = [
            ("model", f"GPT, {c.layers} layers x {c.width} wide, {c.heads} heads, context {c.block_size} "
                      f"({self.num_parameters / 1e6:.2f} M parameters)"),
            ("tokenizer", f"byte-level BPE, {len(self.tokenizer)} tokens"),
            ("corpus", f"{self.corpus_name}: {self.train_tokens:,} training tokens, {self.eval_tokens:,} validation tokens"),
            ("status", self.state.message or self.status),
            ("steps", f"{self.state.step} of {self.state.max_steps} in {self.seconds:.0f} s"),
            ("validation perplexity", f"{_num(self.start_perplexity)} before training -> {_num(self.final_perplexity)} after"),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>{html.escape(str(v))}</td></tr>"
            for k, v in rows
        )
        samples = "".join(
            f"<tr><td style='text-align:left'>{html.escape(self.samples_before.get(p, ''))}</td>"
            f"<td style='text-align:left'>{html.escape(self.samples_after.get(p, ''))}</td></tr>"
            for p in c.prompts
        )
        if samples:
            samples = (
                "<table><caption style='text-align:left'>samples (temperature 0.8; seed i for prompt i)</caption>"
                "<tr><th style='text-align:left'>before training</th><th style='text-align:left'>after</th></tr>"
                f"{samples}</table>"
            )
        return f"<table><caption style='text-align:left'><b>PretrainResult</b></caption>{body}</table>{samples}"


def _num(value) -> str:
    return "?" if value is None else f"{value:.4g}" if value < 1e4 else f"{value:,.0f}"


def generate(model, tokenizer, prompt: str = "", max_new_tokens: int = 40, temperature: float = 0.8, seed: int = 0, top_k: int | None = None, context: int | None = None) -> str:
    """Sample a continuation of `prompt` token by token; returns prompt + continuation."""
    import torch

    if not isinstance(prompt, str):
        raise DataError(f"prompt must be a string, not a {type(prompt).__name__}.")
    if temperature < 0:
        raise ConfigError(f"temperature={temperature} must be >= 0 (0 picks the likeliest token).")
    eos = tokenizer.convert_tokens_to_ids(EOS)
    context = context or model.config.n_positions
    ids = [eos] + tokenizer(prompt, add_special_tokens=False)["input_ids"]  # as at the start of a document
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    new: list[int] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for _ in range(max_new_tokens):
                window = torch.tensor([(ids + new)[-context:]], device=device)
                logits = model(input_ids=window, attention_mask=torch.ones_like(window)).logits[0, -1].float().cpu()
                if temperature == 0:
                    token = int(logits.argmax())
                else:
                    logits = logits / temperature
                    if top_k:
                        cutoff = torch.topk(logits, min(top_k, logits.numel())).values[-1]
                        logits = logits.masked_fill(logits < cutoff, float("-inf"))
                    token = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=generator))
                if token == eos:
                    break
                new.append(token)
    finally:
        model.train(was_training)
    return prompt + tokenizer.decode(new, skip_special_tokens=True)


# ---------------------------------------------------------------------- training
class _EvaluateAtStart(Callback):
    """Evaluates the untrained model once, after the display has opened, so step 0 is on the curve."""

    def __init__(self, engine):
        self.engine = engine

    def on_train_begin(self, state):
        if state.step == 0 and not any(r.get("step") == 0 and "eval_loss" in r for r in state.history):
            try:
                self.engine._evaluate()
            except KeyboardInterrupt:  # the engine's own handler is not active yet: end the run the same way
                state.status = INTERRUPTED
                state.message = "interrupted at step 0, before training"


def pack(ids: list[int], block_size: int):
    """A (blocks, block_size) LongTensor of consecutive tokens (the ragged end is dropped)."""
    import torch

    n = len(ids) // block_size
    return torch.tensor(ids[: n * block_size], dtype=torch.long).view(n, block_size)


def pretrain(corpus=None, config: PretrainConfig | None = None, callbacks=(), **options) -> PretrainResult:
    """Train a byte-level BPE tokenizer and a small GPT from scratch on `corpus`; returns a `PretrainResult`.

    corpus:   None or "stories" (the stories llmnb builds, see `llmnb.corpus`), a list of strings,
              a string of text, a .txt file path, or a DataFrame with a "text" column.
    options:  any `PretrainConfig` field, e.g. max_steps=300, width=128, lr=1e-3.
    callbacks: extra `llmnb.Callback` listeners (they see every log row and evaluation).

    Ctrl-C stops training and still returns the result, holding the best weights so far.
    """
    import time

    started = time.perf_counter()
    config = (config or PretrainConfig()).replace(**options) if options else (config or PretrainConfig())
    docs, corpus_name = read_corpus(corpus, config.corpus_chars, config.seed)
    if not docs:
        raise DataError("The corpus is empty: give some text to pretrain on.")
    train_docs, eval_docs = split_documents(docs, config.eval_fraction, config.seed)
    tokenizer = train_tokenizer(train_docs, config.vocab_size)
    train_ids = encode_stream(tokenizer, train_docs)
    eval_ids = encode_stream(tokenizer, eval_docs)
    tokenizer.model_max_length = config.block_size  # after encoding whole documents: the model's context
    if not eval_docs:  # a single document: validate on its last tokens
        cut = len(train_ids) - max(config.block_size, int(len(train_ids) * config.eval_fraction))
        train_ids, eval_ids = train_ids[:cut], train_ids[cut:]
    eval_blocks = pack(eval_ids[:MAX_EVAL_TOKENS], config.block_size)
    n_train_blocks = (len(train_ids) - 1) // config.block_size  # the same for every start offset
    if n_train_blocks < 2 or len(eval_blocks) < 1:
        need = 3 * config.block_size / max(config.eval_fraction, 0.01)
        raise DataError(
            f"The corpus is too small: {len(train_ids)} training and {len(eval_ids)} validation tokens make "
            f"{max(n_train_blocks, 0)} training and {len(eval_blocks)} validation blocks of block_size={config.block_size}. "
            f"Give more text (about {need:,.0f} tokens or more) or a smaller block_size."
        )

    from .models import resolve_device

    device = resolve_device(config.device)
    threads = config.threads or auto_threads(device)
    with cpu_threads(threads):
        model = build_model(tokenizer, config).to(device)
        samples_before = _samples(model, tokenizer, config)
        plan = f"{corpus_name}: {len(docs)} documents, {len(train_ids):,} training tokens, {len(eval_blocks) * config.block_size:,} validation tokens"
        state = _train(model, tokenizer, config, train_ids, n_train_blocks, eval_blocks, callbacks, plan, samples_before)
        samples_after = _samples(model, tokenizer, config)
    result = PretrainResult(
        model=model,
        tokenizer=tokenizer,
        config=config,
        state=state,
        samples_before=samples_before,
        samples_after=samples_after,
        corpus_name=corpus_name,
        documents=len(docs),
        train_tokens=len(train_ids),
        eval_tokens=len(eval_blocks) * config.block_size,
        seconds=time.perf_counter() - started,
    )
    if not config.quiet:
        for text in samples_after.values():
            print(f"llmnb: after training:  {text!r}")
        print(
            f"llmnb: validation perplexity {_num(result.start_perplexity)} -> {_num(result.final_perplexity)} "
            f"in {state.step} steps ({result.seconds:.0f} s)"
        )
    from .memory import release_memory

    release_memory()
    if state.status == FAILED:
        from .errors import TrainingError

        error = TrainingError(state.message)
        error.result = result  # the magic binds it, so nothing trained is lost
        raise error
    return result


def _train(model, tokenizer, config, train_ids, n_train_blocks, eval_blocks, callbacks, data_text, samples_before) -> TrainState:
    """Run the engine (with the display) over packed blocks; returns the final TrainState."""
    import torch

    from .display import make_display
    from .engine import Engine
    from .models import quiet_transformers

    engine_config = config.engine_config()

    def train_batches(epoch):
        # Each epoch cuts the token stream at a different offset and shuffles the blocks.
        g = torch.Generator().manual_seed(config.seed * 1000 + epoch)
        offset = int(torch.randint(config.block_size, (1,), generator=g)) if epoch else 0
        blocks = pack(train_ids[offset:], config.block_size)[:n_train_blocks]
        order = torch.randperm(len(blocks), generator=g)
        for start in range(0, len(order), config.batch_size):
            x = blocks[order[start : start + config.batch_size]]
            yield {"input_ids": x, "attention_mask": torch.ones_like(x), "labels": x}

    def evaluate():
        return evaluate_blocks(model, eval_blocks, config.batch_size * 2)

    state = TrainState(
        task="pretraining",
        model_name=f"GPT {config.layers}x{config.width} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M)",
        metric_name="eval_perplexity",
        greater_is_better=False,
    )
    steps_per_epoch = -(-n_train_blocks // config.batch_size)
    display = None if config.quiet else make_display("auto", plot=config.plot)
    torch.manual_seed(config.seed)
    engine = Engine(model, engine_config, train_batches, steps_per_epoch, evaluate, [display, *callbacks], state)
    engine.callbacks.callbacks.append(_EvaluateAtStart(engine))  # after the display opened
    if not config.quiet:
        print(_plan(engine, config, tokenizer, data_text))
        for text in samples_before.values():
            print(f"llmnb: before training: {text!r}")
    with quiet_transformers():
        engine.fit()
    return state


def build_model(tokenizer, config: PretrainConfig):
    """A GPT-2 architecture of the configured size with random weights (seeded)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from .models import quiet_transformers

    eos = tokenizer.convert_tokens_to_ids(EOS)
    gpt_config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=config.block_size,
        n_embd=config.width,
        n_layer=config.layers,
        n_head=config.heads,
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.dropout,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    torch.manual_seed(config.seed)
    with quiet_transformers():
        return GPT2LMHeadModel(gpt_config)


def evaluate_blocks(model, blocks, batch_size: int) -> dict[str, float]:
    """Mean next-token loss over the validation blocks, and its exponential, the perplexity."""
    import torch

    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(blocks), batch_size):
            x = blocks[start : start + batch_size].to(device)
            loss = model(input_ids=x, attention_mask=torch.ones_like(x), labels=x).loss.float()
            n = x.shape[0] * (x.shape[1] - 1)  # predicted tokens: all but each block's first
            total += float(loss) * n
            count += n
    loss = total / max(count, 1)
    return {"eval_loss": loss, "eval_perplexity": math.exp(min(loss, 700.0))}


def _samples(model, tokenizer, config: PretrainConfig) -> dict[str, str]:
    # Seed i for prompt i: the same seed for all would make every sample start alike.
    return {p: generate(model, tokenizer, p, 40, 0.8, i, None, config.block_size) for i, p in enumerate(config.prompts)}


def _plan(engine, config: PretrainConfig, tokenizer, data_text: str) -> str:
    """One line that says what is about to happen, with the defaults in force."""
    import torch

    s = engine.state
    precision = str(engine.autocast_dtype).replace("torch.", "") if engine.autocast_dtype else "fp32"
    params = sum(p.numel() for p in engine.model.parameters())
    where = f"{engine.device}, {torch.get_num_threads()} threads" if engine.device.type == "cpu" else str(engine.device)
    return (
        f"llmnb: pretraining a {config.layers}-layer GPT (width {config.width}, {params / 1e6:.2f} M parameters) "
        f"from scratch on {data_text}; byte-level BPE tokenizer of {len(tokenizer)} tokens; {s.max_steps} steps "
        f"({s.num_epochs:.1f} epochs) of {config.batch_size} x {config.block_size} tokens, lr {config.lr:g}, "
        f"{precision} on {where} (profile {profile()})"
    )


def auto_threads(device) -> int | None:
    """CPU threads for training: the cores not busy with other work, at least 1 (None off the CPU).

    Measured on a 2-core machine running other jobs (load average ~6): a 2-layer GPT took
    2.1 s per step with 2 threads and 0.19 s with 1, because each thread waits at every
    operation for the slowest one. On an idle machine all cores are used.
    """
    import torch

    if device.type != "cpu":
        return None
    current = torch.get_num_threads()
    try:
        busy = int(os.getloadavg()[0])
    except (OSError, AttributeError):  # no load average (Windows)
        return current
    return max(1, min(current, (os.cpu_count() or current) - busy))


@contextlib.contextmanager
def cpu_threads(threads: int | None):
    """Run with `threads` torch CPU threads, then put the previous number back."""
    import torch

    before = torch.get_num_threads()
    if threads and threads != before:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
