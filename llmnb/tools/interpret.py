"""Why did the model say that? Attention maps and gradient x input saliency for one text.

Used in tutorials/04_math.ipynb (attention is a softmax over query . key; a gradient says
which inputs move the output) and 09_faq.ipynb ("which words made it decide?"):

    ex = llmnb.explain(ft, "The room was lovely but the staff were rude.")
    ex                          # tokens coloured by saliency + the attention heat-map
    ex.top_tokens(3)            # [('rude', 1.0), ('lovely', -0.62), ...]
    ex.plot()                   # a matplotlib Figure of both
    llmnb.explain(ft, text, layer=0, head=1)   # one head of the first layer

Saliency of token i for class c is (d logit_c / d h_i) . h_i, where h_i is what the embedding
layer hands to the first transformer layer for token i (word + position + segment embeddings,
after BERT's LayerNorm): the first-order share of the logit that token i accounts for. It is
signed (positive pushes towards c) and divided by the largest |value| among the text's own
tokens (special tokens such as [CLS] are shown, clipped to [-1, 1], but do not set the scale).
It is not taken on the word embedding before the LayerNorm: LayerNorm's gradient is orthogonal
to its (centred) input, so there the product is exactly minus that of the position and segment
embeddings and says nothing about the word (09_faq measures the difference with a deletion test).
"""
from __future__ import annotations

import base64
import contextlib
import html
import io
from dataclasses import dataclass, field

from llmnb.core.models import eval_mode
from llmnb.errors import ExplainError


@dataclass
class Explanation:
    text: str
    tokens: list
    attention: object  # numpy [tokens, tokens]: row i = how token i spreads its attention
    saliency: object = None  # numpy [tokens] in [-1, 1], or None for a model without a head
    label: object = None  # the class explained (predicted unless `target` was given)
    scores: dict = field(default_factory=dict)  # class -> probability
    layer: int = 0  # counted from 0
    head: int | None = None
    num_layers: int = 0
    num_heads: int = 0
    special: list = field(default_factory=list)  # True for [CLS], [SEP], padding...

    @property
    def attention_title(self) -> str:
        which = f"head {self.head}" if self.head is not None else f"mean of {self.num_heads} heads"
        return f"attention, layer {self.layer} of 0-{self.num_layers - 1} ({which})"

    def top_tokens(self, k: int = 5, special: bool = False) -> list:
        """The k tokens with the largest |saliency|, as (token, saliency) pairs (special tokens
        such as [CLS] left out unless special=True)."""
        if self.saliency is None:
            return []
        keep = [i for i in range(len(self.tokens)) if special or not (self.special and self.special[i])]
        order = sorted(keep, key=lambda i: -abs(float(self.saliency[i])))
        return [(self.tokens[i], round(float(self.saliency[i]), 4)) for i in order[:k]]

    def plot(self, path=None):
        """A matplotlib Figure: saliency per token (left) and the attention heat-map (right)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        n = len(self.tokens)
        side = min(9.0, 2.0 + 0.28 * n)
        fig = Figure(figsize=(side * (1.6 if self.saliency is not None else 1.0), side * 0.85), layout="constrained")
        FigureCanvasAgg(fig)  # off-screen, whatever the pyplot backend
        axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [0.6, 1]}) if self.saliency is not None else [None, fig.subplots()]
        if self.saliency is not None:
            ax = axes[0]
            values = [float(v) for v in self.saliency]
            ax.barh(range(n), values, color=["#e8710a" if v >= 0 else "#1a73e8" for v in values])
            ax.set_yticks(range(n), self.tokens, fontsize=8)
            ax.invert_yaxis()
            ax.set_xlim(-1.05, 1.05)
            ax.axvline(0, color="#808080", linewidth=0.8)
            ax.set_title(f"saliency for '{self.label}'", fontsize=10)
        ax = axes[1]
        image = ax.imshow(self.attention, cmap="viridis", vmin=0, vmax=float(self.attention.max()) or 1.0)
        ax.set_xticks(range(n), self.tokens, rotation=90, fontsize=8)
        ax.set_yticks(range(n), self.tokens, fontsize=8)
        ax.set_xlabel("attended to (key)")
        ax.set_ylabel("attending (query)")
        ax.set_title(self.attention_title, fontsize=10)
        fig.colorbar(image, ax=ax, shrink=0.8)
        if path is not None:
            fig.savefig(path, dpi=150)
        return fig

    def png(self) -> bytes:
        """The figure as PNG bytes: transparent, grey text, readable on light and dark themes."""
        import matplotlib

        from llmnb.display.plot import _NEUTRAL_STYLE

        with matplotlib.rc_context(_NEUTRAL_STYLE):
            buffer = io.BytesIO()
            self.plot().savefig(buffer, format="png", dpi=110, transparent=True)
        return buffer.getvalue()

    def tokens_html(self) -> str:
        """The tokens as spans: orange pushes towards the label, blue away; stronger = more."""
        spans = []
        for i, token in enumerate(self.tokens):
            s = 0.0 if self.saliency is None else float(self.saliency[i])
            rgb = "232,113,10" if s >= 0 else "26,115,232"  # translucent colours on the theme's own background
            spans.append(
                f"<span title='{s:+.3f}' style='background:rgba({rgb},{0.85 * abs(s):.3f});color:inherit;"
                f"padding:1px 3px;margin:1px;border-radius:3px;display:inline-block'>{html.escape(token)}</span>"
            )
        return "".join(spans)

    def _repr_html_(self):
        scores = ", ".join(f"{html.escape(str(k))} {v:.2f}" for k, v in self.scores.items())
        head = f"<b>{html.escape(str(self.label))}</b> ({scores})" if self.scores else "no classification head: attention only"
        image = base64.b64encode(self.png()).decode()
        return (
            f"<div><div>{head}</div><div style='line-height:1.9;margin:4px 0'>{self.tokens_html()}</div>"
            f"<img src='data:image/png;base64,{image}' alt='{html.escape(self.attention_title)}' style='max-width:100%'/></div>"
        )

    def __repr__(self):
        top = ", ".join(f"{t} {s:+.2f}" for t, s in self.top_tokens(5))
        return f"Explanation({self.label!r}, {len(self.tokens)} tokens, {self.attention_title}; top: {top or 'n/a'})"


def explain(result_or_loaded, text: str, layer: int = -1, head: int | None = None, target=None) -> Explanation:
    """Attention of `layer` (one `head`, or the mean over heads) and gradient x input saliency
    of every token for class `target` (a label or class index; default: the predicted class).

    Takes a `FineTuneResult`, a `LoadedModel` or a `(model, tokenizer)` pair. The model is put
    in eval mode and switched to eager attention for the call (the fast kernels do not return
    attention weights); both are restored afterwards.

    Taught in chapter 9 (tutorials/09_faq.ipynb).
    """
    import torch

    model, tokenizer, names, max_length = _unpack(result_or_loaded)
    if not isinstance(text, str) or not text.strip():
        raise ExplainError(f"explain() needs one non-empty text (a str), not {text!r}.")
    device = next(model.parameters()).device
    batch = tokenizer([text], truncation=True, max_length=max_length, return_tensors="pt").to(device)
    is_special = [i in set(tokenizer.all_special_ids) for i in batch["input_ids"][0].tolist()]
    with eval_mode(model):
        with _eager_attention(model), torch.enable_grad():
            embeds = model.get_input_embeddings()(batch["input_ids"]).detach().requires_grad_(True)
            inputs = {k: v for k, v in batch.items() if k != "input_ids"}
            out = model(inputs_embeds=embeds, output_attentions=True, output_hidden_states=True, **inputs)
            attentions = out.attentions
            if not attentions:
                raise ExplainError(f"{type(model).__name__} returned no attention weights, so explain() cannot show them.")
            layer_index, head_index = _check_index("layer", layer, len(attentions)), head
            chosen = attentions[layer_index][0].detach().float()  # [heads, tokens, tokens]
            if head is not None:
                head_index = _check_index("head", head, chosen.shape[0])
            matrix = chosen.mean(0) if head is None else chosen[head_index]
            logits = getattr(out, "logits", None)
            saliency, label, scores = None, None, {}
            if logits is not None:
                logits = logits[0].float()
                index = _target_index(target, names, logits)
                # The embedding layer's output (see the module docstring); the raw embeddings if the model has no hidden states.
                start = out.hidden_states[0] if getattr(out, "hidden_states", None) else embeds
                (grad,) = torch.autograd.grad(logits[index], start)  # no .grad left on the weights
                raw = (grad * start).sum(-1)[0].detach()
                # Scaled by the largest |value| among the words: [CLS]/[SEP] often dwarf them.
                special = torch.tensor(is_special, device=raw.device)
                scale = raw[~special].abs().max() if (~special).any() else raw.abs().max()
                saliency = (raw / scale.clamp_min(1e-12)).clamp(-1, 1).cpu().numpy()
                if len(logits) > 1:
                    probs = torch.softmax(logits.detach(), -1).tolist()
                    scores = {names[i] if names else i: round(p, 4) for i, p in enumerate(probs)}
                label = names[index] if names else index
                if len(logits) == 1:
                    label = round(float(logits[0]), 4)  # regression: the predicted value
    return Explanation(
        text=text, tokens=tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist()), attention=matrix.cpu().numpy(),
        saliency=saliency, label=label, scores=scores, layer=layer_index, head=head_index,
        num_layers=len(attentions), num_heads=chosen.shape[0], special=is_special,
    )


def _unpack(obj):
    """(model, tokenizer, class names or None, max_length) from what the user passed."""
    from llmnb.core.models import LoadedModel
    from llmnb.finetuning.result import FineTuneResult

    if isinstance(obj, FineTuneResult):
        return obj.model, obj.tokenizer, (obj.labels.names if obj.labels else None), obj.config.max_length
    if isinstance(obj, LoadedModel) or (isinstance(obj, tuple) and len(obj) == 2):
        model, tokenizer = obj
        id2label = getattr(getattr(model, "config", None), "id2label", None) or {}
        names = [id2label[i] for i in sorted(id2label)] if id2label else None
        return model, tokenizer, names, min(512, getattr(tokenizer, "model_max_length", 512) or 512)
    raise ExplainError(f"explain() takes a FineTuneResult, a LoadedModel or a (model, tokenizer) pair, not a {type(obj).__name__}.")


def _check_index(what: str, value, count: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -count <= value < count:
        raise ExplainError(f"{what}={value!r} does not exist: this model has {count} {what}s, numbered 0 to {count - 1} (or -1 for the last).")
    return value % count


def _target_index(target, names, logits) -> int:
    if target is None:
        return int(logits.argmax()) if len(logits) > 1 else 0
    if names and str(target) in map(str, names):  # "1" names the label 1 too (as typed in %explain)
        return [str(n) for n in names].index(str(target))
    if isinstance(target, str) and target.isdigit():
        target = int(target)  # a class index typed as text
    if isinstance(target, int) and not isinstance(target, bool) and 0 <= target < len(logits):
        return target
    known = ", ".join(map(str, names)) if names else f"0 to {len(logits) - 1}"
    raise ExplainError(f"target={target!r} is not one of the model's classes ({known}).")


@contextlib.contextmanager
def _eager_attention(model):
    """Switch to the plain ("eager") attention for the call: it is the one that returns weights."""
    config = getattr(model, "config", None)
    before = getattr(config, "_attn_implementation", None)
    if before in (None, "eager"):
        yield
        return
    setter = getattr(model, "set_attn_implementation", None)
    if setter is not None:
        setter("eager")
    else:
        config._attn_implementation = "eager"
    try:
        yield
    finally:
        if setter is not None:
            setter(before)
        else:
            config._attn_implementation = before
