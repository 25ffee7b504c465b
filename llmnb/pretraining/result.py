"""`PretrainResult`: what `pretrain` returns and `%pretrain` binds to `gpt`.

    gpt.samples_before, gpt.samples_after      prompt -> prompt + what the model wrote, before and after training
    gpt.generate("Once upon a time")           a new sample: the continuation, without the prompt
    gpt.start_perplexity, gpt.final_perplexity
    gpt.save("my-gpt")                         safetensors + tokenizer: AutoModelForCausalLM loads it
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from llmnb.core.result import TrainResult


@dataclass
class PretrainResult(TrainResult):
    """A pretrained GPT and its tokenizer, with samples before and after and the perplexity curve.

    Taught in chapter 3 (tutorials/03_algorithm.ipynb).
    """
    samples_before: dict = field(default_factory=dict)
    samples_after: dict = field(default_factory=dict)
    corpus_name: str = ""
    documents: int = 0
    train_tokens: int = 0
    eval_tokens: int = 0
    seconds: float = 0.0

    @property
    def history(self):
        """One row per logged step, with eval_loss / eval_perplexity at evaluation steps (step 0 included)."""
        return self.state.history_frame()

    @property
    def evaluations(self) -> list[dict]:
        return [r for r in self.state.history if "eval_perplexity" in r]

    @property
    def start_perplexity(self) -> float | None:
        """Validation perplexity of the untrained model (step 0)."""
        evals = self.evaluations
        return evals[0]["eval_perplexity"] if evals and evals[0]["step"] == 0 else None

    @property
    def final_perplexity(self) -> float | None:
        """Validation perplexity of the weights held (the best evaluation)."""
        return self.metrics.get("eval_perplexity")

    def generate(self, prompt: str = "", max_new_tokens: int = 40, temperature: float = 0.8, seed: int = 0, top_k: int | None = None) -> str:
        """Up to `max_new_tokens` sampled tokens after `prompt`, without the prompt (stops at end of
        text), as every generate in llmnb; `prompt + gpt.generate(prompt)` reads the whole.

        temperature 0 picks the likeliest token each time; higher is more varied. The same
        seed gives the same text. An empty prompt starts a new document. The context is the
        last `block_size` tokens, the length the model was trained on.
        """
        from llmnb.pretraining.model import generate

        return generate(self.model, self.tokenizer, prompt, max_new_tokens, temperature, seed, top_k, self.config.block_size)

    def save(self, directory) -> Path:
        """Write safetensors weights, the tokenizer and llmnb.json (options and perplexities).

        Reload with `transformers.AutoModelForCausalLM.from_pretrained(directory)` and
        `transformers.AutoTokenizer.from_pretrained(directory)`.
        """
        return super().save(directory)

    def _meta(self) -> dict:
        return {
            "kind": "pretrained GPT",
            "corpus": self.corpus_name,
            "metrics": self.metrics,
            "start_perplexity": self.start_perplexity,
            "steps": self.state.step,
        }

    def __repr__(self):
        return (
            f"PretrainResult(GPT {self.config.layers}x{self.config.width}, {self.status} at step {self.state.step}/"
            f"{self.state.max_steps}, perplexity {format_number(self.start_perplexity)} -> {format_number(self.final_perplexity)})"
        )

    def _summary(self):
        c = self.config
        return [
            ("model", f"GPT, {c.layers} layers x {c.width} wide, {c.heads} heads, context {c.block_size} "
                      f"({self.num_parameters / 1e6:.2f} M parameters)"),
            ("tokenizer", f"byte-level BPE, {len(self.tokenizer)} tokens"),
            ("corpus", f"{self.corpus_name}: {self.train_tokens:,} training tokens, {self.eval_tokens:,} validation tokens"),
            *super()._summary(),
            ("steps", f"{self.state.step} of {self.state.max_steps} in {self.seconds:.0f} s"),
            ("validation perplexity",
             f"{format_number(self.start_perplexity)} before training -> {format_number(self.final_perplexity)} after"),
        ]

    def _extra_html(self):
        samples = "".join(
            f"<tr><td style='text-align:left'>{html.escape(self.samples_before.get(p, ''))}</td>"
            f"<td style='text-align:left'>{html.escape(self.samples_after.get(p, ''))}</td></tr>"
            for p in self.config.prompts
        )
        if not samples:
            return ""
        return (
            "<table><caption style='text-align:left'>samples (temperature 0.8; seed i for prompt i)</caption>"
            "<tr><th style='text-align:left'>before training</th><th style='text-align:left'>after</th></tr>"
            f"{samples}</table>"
        )


def format_number(value) -> str:
    """A perplexity for people: 4 significant digits, or a whole number with commas when large."""
    return "?" if value is None else f"{value:.4g}" if value < 1e4 else f"{value:,.0f}"
