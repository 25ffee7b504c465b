"""`llmnb.pretrain` and `PretrainJob`: a tokenizer and a small GPT trained from nothing on a text corpus.

    gpt = llmnb.pretrain()                              # the stories llmnb builds (llmnb.build_corpus)
    gpt = llmnb.pretrain("my_book.txt", width=256, max_steps=2000)
    gpt = llmnb.pretrain(list_of_texts, config=llmnb.PretrainConfig(layers=4))
    gpt.samples_before          # what the untrained model wrote (random tokens)
    gpt.generate("Once upon a time")   # the continuation, without the prompt
    gpt.start_perplexity, gpt.final_perplexity
    gpt.save("my-gpt")          # safetensors + tokenizer: AutoModelForCausalLM / AutoTokenizer load it

The job fills in the steps of `llmnb.core.job.Job`: check options -> read the corpus -> hold
out validation documents -> train a byte-level BPE tokenizer on the training documents ->
tokenize and cut into blocks of `block_size` tokens -> build a GPT-2 with random weights ->
sample from it -> train with the engine (the same loop, display and Ctrl-C handling as
`finetune`), evaluating validation perplexity at step 0 and every `eval_every` steps -> sample
again (chapter 3).
"""
from __future__ import annotations

import time

from llmnb.core.events import TrainState
from llmnb.core.job import Job
from llmnb.core.record import data_fingerprint
from llmnb.errors import DataError
from llmnb.pretraining.config import PretrainConfig, profile
from llmnb.pretraining.corpus import read_corpus, split_documents
from llmnb.pretraining.model import build_model, evaluate_blocks, generate, pack
from llmnb.pretraining.result import PretrainResult, format_number
from llmnb.pretraining.tokenizer import encode_stream, train_tokenizer

MAX_EVAL_TOKENS = 32_768  # validation is capped so that evaluating a big corpus stays cheap


def pretrain(corpus=None, config: PretrainConfig | None = None, callbacks=(), **options) -> PretrainResult:
    """Train a byte-level BPE tokenizer and a small GPT from scratch on `corpus`; returns a `PretrainResult` (chapter 3).

    corpus:   None or "stories" (the stories llmnb builds, see `llmnb.build_corpus`), a list of strings,
              a string of text, a .txt file path, or a DataFrame with a "text" column.
    options:  any `PretrainConfig` field, e.g. max_steps=300, width=128, lr=1e-3.
    callbacks: extra `llmnb.Callback` listeners (they see every log row and evaluation).

    Ctrl-C stops training and still returns the result, holding the best weights so far.
    """
    config = (config or PretrainConfig()).replace(**options) if options else (config or PretrainConfig())
    from llmnb.display import watchers

    return PretrainJob(corpus, config, callbacks).run(watchers)


class PretrainJob(Job):
    """A corpus and a GPT built from nothing: the steps of `Job.run` for pretraining."""

    eval_at_start = True  # the untrained model's perplexity is the start of the story

    def __init__(self, corpus, config: PretrainConfig, callbacks=()):
        super().__init__(config, callbacks)
        self.corpus = corpus
        self.started = time.perf_counter()

    def prepare_data(self):
        config = self.config
        docs, self.corpus_name = read_corpus(self.corpus, config.corpus_chars, config.seed)
        if not docs:
            raise DataError("The corpus is empty: give some text to pretrain on.")
        self.documents = len(docs)
        train_docs, eval_docs = split_documents(docs, config.eval_fraction, config.seed)
        tokenizer = self.tokenizer = train_tokenizer(train_docs, config.vocab_size)
        train_ids = encode_stream(tokenizer, train_docs)
        eval_ids = encode_stream(tokenizer, eval_docs)
        tokenizer.model_max_length = config.block_size  # after encoding whole documents: the model's context
        if not eval_docs:  # a single document: validate on its last tokens
            cut = len(train_ids) - max(config.block_size, int(len(train_ids) * config.eval_fraction))
            train_ids, eval_ids = train_ids[:cut], train_ids[cut:]
        self.eval_blocks = pack(eval_ids[:MAX_EVAL_TOKENS], config.block_size)
        self.n_train_blocks = (len(train_ids) - 1) // config.block_size  # the same for every start offset
        if self.n_train_blocks < 2 or len(self.eval_blocks) < 1:
            need = 3 * config.block_size / max(config.eval_fraction, 0.01)
            raise DataError(
                f"The corpus is too small: {len(train_ids)} training and {len(eval_ids)} validation tokens make "
                f"{max(self.n_train_blocks, 0)} training and {len(self.eval_blocks)} validation blocks of "
                f"block_size={config.block_size}. Give more text (about {need:,.0f} tokens or more) or a smaller block_size."
            )
        self.train_ids = train_ids
        self.fingerprints = {"train": data_fingerprint(train_docs), "validation": data_fingerprint(eval_docs)}
        self.steps_per_epoch = -(-self.n_train_blocks // config.batch_size)
        from llmnb.core.models import resolve_device

        self.device = resolve_device(config.device)

    def data_fingerprint(self) -> dict:
        return self.fingerprints

    def context(self):
        from llmnb.core.threads import cpu_threads

        # Not chosen from the load average: another thread count sums in another order, so the
        # same seed would give other losses (0.01 apart after 40 steps) on a busier machine.
        return cpu_threads(self.config.threads)

    def build_model(self):
        self.model = build_model(self.tokenizer, self.config).to(self.device)
        self.samples_before = self._samples()
        return self.model

    def new_state(self, model) -> TrainState:
        c = self.config
        return TrainState(
            task="pretraining",
            model_name=f"GPT {c.layers}x{c.width} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M)",
            metric_name="eval_perplexity",
            greater_is_better=False,
        )

    def batches(self, epoch):
        import torch

        # Each epoch cuts the token stream at a different offset and shuffles the blocks.
        config = self.config
        g = torch.Generator().manual_seed(config.seed * 1000 + epoch)
        offset = int(torch.randint(config.block_size, (1,), generator=g)) if epoch else 0
        blocks = pack(self.train_ids[offset:], config.block_size)[: self.n_train_blocks]
        order = torch.randperm(len(blocks), generator=g)
        for start in range(0, len(order), config.batch_size):
            x = blocks[order[start : start + config.batch_size]]
            yield {"input_ids": x, "attention_mask": torch.ones_like(x), "labels": x}

    def evaluate(self):
        return evaluate_blocks(self.model, self.eval_blocks, self.config.batch_size * 2)

    def plan(self, engine) -> str:
        """What is about to happen, with the defaults in force, then what the untrained model writes."""
        import torch

        config, s = self.config, engine.state
        precision = str(engine.autocast_dtype).replace("torch.", "") if engine.autocast_dtype else "fp32"
        params = sum(p.numel() for p in engine.model.parameters())
        where = f"{engine.device}, {torch.get_num_threads()} threads" if engine.device.type == "cpu" else str(engine.device)
        data = (
            f"{self.corpus_name}: {self.documents} documents, {len(self.train_ids):,} training tokens, "
            f"{len(self.eval_blocks) * config.block_size:,} validation tokens"
        )
        lines = [
            f"llmnb: pretraining a {config.layers}-layer GPT (width {config.width}, {params / 1e6:.2f} M parameters) "
            f"from scratch on {data}; byte-level BPE tokenizer of {len(self.tokenizer)} tokens; {s.max_steps} steps "
            f"({s.num_epochs:.1f} epochs) of {config.batch_size} x {config.block_size} tokens, lr {config.lr:g}, "
            f"{precision} on {where} (profile {profile()})"
        ]
        lines += [f"llmnb: before training: {text!r}" for text in self.samples_before.values()]
        return "\n".join(lines)

    def make_result(self, model, state):
        samples_after = self._samples()
        result = PretrainResult(
            model=model,
            tokenizer=self.tokenizer,
            config=self.config,
            state=state,
            samples_before=self.samples_before,
            samples_after=samples_after,
            corpus_name=self.corpus_name,
            documents=self.documents,
            train_tokens=len(self.train_ids),
            eval_tokens=len(self.eval_blocks) * self.config.block_size,
            seconds=time.perf_counter() - self.started,
        )
        if not self.config.quiet:
            for text in samples_after.values():
                print(f"llmnb: after training:  {text!r}")
            print(
                f"llmnb: validation perplexity {format_number(result.start_perplexity)} -> "
                f"{format_number(result.final_perplexity)} in {state.step} steps ({result.seconds:.0f} s)"
            )
        return result

    def _samples(self) -> dict[str, str]:
        """prompt -> the prompt and its sampled continuation: whole texts, for reading side by side."""
        # Seed i for prompt i: the same seed for all would make every sample start alike.
        c = self.config
        return {p: p + generate(self.model, self.tokenizer, p, 40, 0.8, i, None, c.block_size) for i, p in enumerate(c.prompts)}
