"""A model card for a trained run, in the Hugging Face convention: YAML metadata between `---`
lines (library, base model, pipeline tag, tags, metrics and a `model-index` of the evaluation
results, written by `huggingface_hub.ModelCardData` so the Hub reads it), then the sections a
reader looks for: intended use, data, training, evaluation, limitations.

Built from the run's record (`TrainResult.record()`), so the card says only what the run knows:
which data (its sha256), which options, which versions and machine, what it scored and cost.
`result.save()` writes it as README.md beside the weights.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CardWords:
    """What a card says about the kind of model: its Hub pipeline tag, what it does, how it was tuned."""

    tag: str
    does: str
    tuned_as: str
    generative: bool


# A run with no task in its record is a pretraining run (llmnb.pretrain): not a fine-tuning task.
PRETRAINED = CardWords("text-generation", "continues a text in the style of its training corpus", "pretrained from scratch", True)


def card_words(task: str | None) -> CardWords:
    """The card's words for `task`, from the task's own class (llmnb/tasks/)."""
    if not task:
        return PRETRAINED
    from llmnb.core.task import get_task
    from llmnb.errors import ConfigError

    try:
        cls = get_task(task)
    except ConfigError:  # a record from a task this installation does not have
        return CardWords("", "was trained by llmnb", f"trained for {task}", False)
    return CardWords(cls.pipeline_tag, cls.does, cls.tuned_as, cls.generative)
# llmnb's offline aliases and the Hub models they are
BASE_MODELS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}


def model_card(record: dict, facts: dict | None = None) -> str:
    """The card as Markdown, from a run's record (and optional extra facts: {"title": ...})."""
    from huggingface_hub import EvalResult, ModelCardData

    facts = facts or {}
    words = card_words(record.get("task"))
    task = record.get("task") or "pretrain"
    pipeline_tag, what = words.tag or None, words.does
    model_name = str(record.get("model_name") or record.get("kind") or "model")
    base = BASE_MODELS.get(model_name, model_name if _looks_like_hub_id(model_name) else None)
    metrics = {k.removeprefix("eval_"): v for k, v in (record.get("metrics") or {}).items() if isinstance(v, (int, float))}
    data = record.get("data") or {}
    dataset_name = facts.get("dataset") or _data_name(record)
    results = [
        EvalResult(task_type=pipeline_tag, dataset_type=dataset_name, dataset_name=dataset_name,
                   dataset_split="validation", metric_type=name, metric_name=name, metric_value=round(float(value), 6))
        for name, value in metrics.items()
    ]
    metadata = ModelCardData(
        library_name="transformers",
        base_model=base,
        pipeline_tag=pipeline_tag,
        tags=["llmnb", task],
        metrics=sorted(metrics) or None,
        model_name=facts.get("title") or f"{model_name} {task}",
        eval_results=results or None,
    )
    title = facts.get("title") or f"{model_name}, {words.tuned_as} with llmnb"
    sections = [
        f"---\n{metadata.to_yaml()}\n---",
        f"# {title}",
        f"This model {what}. It was trained with [llmnb](https://github.com/llmnb/llmnb) "
        f"(version {record.get('llmnb_version', '?')}) and {_status_words(record)}.",
        "## Intended use\n\n" + _intended_use(words, record),
        "## Data\n\n" + _data_section(data, record),
        "## Training\n\n" + _training_section(record),
        "## Evaluation\n\n" + _evaluation_section(metrics, record),
        "## Limitations\n\n" + _limitations(words, data),
    ]
    return "\n\n".join(sections).rstrip() + "\n"


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def _status_words(record: dict) -> str:
    status = record.get("status", "finished")
    steps = record.get("steps")
    return f"{status} after {steps} optimizer steps" if steps is not None else status


def _data_name(record: dict) -> str:
    return str(record.get("corpus") or "custom")


def _intended_use(words: CardWords, record: dict) -> str:
    labels = record.get("labels")
    lines = ["Learning and experiments: this model comes from a notebook run and was checked only on the "
             "validation data below. It is not meant for decisions about people."]
    if labels:
        lines.append(f"It predicts one of: {', '.join(map(str, labels))}.")
    if words.generative:
        lines.append("Generated text can be fluent and wrong: read it, don't trust it.")
    return " ".join(lines)


def _data_section(data: dict, record: dict) -> str:
    if not data:
        return "The run did not record its data."
    rows = []
    for split, info in data.items():
        labels = info.get("labels")
        counts = ", ".join(f"{k}: {v}" for k, v in labels.items()) if labels else ""
        rows.append(f"| {split} | {info.get('rows', '?')} | {counts} | `{info.get('sha256', '')[:16]}` |")
    corpus = f"Corpus: {record['corpus']}.\n\n" if record.get("corpus") else ""
    return (corpus + "| split | rows | rows per label | sha256 (first 16 hex digits) |\n|---|---|---|---|\n" + "\n".join(rows)
            + "\n\nThe sha256 covers every text and target in order: two runs with the same one saw the same examples.")


def _training_section(record: dict) -> str:
    config = record.get("config") or {}
    keys = ["epochs", "max_steps", "batch_size", "lr", "schedule", "warmup", "weight_decay", "freeze", "max_length",
            "block_size", "layers", "width", "precision", "seed"]
    keys += ["lora", "lora_r", "lora_alpha"] if config.get("lora") else []
    keys += _task_option_names(record.get("task"))  # dpo: beta, rpo_alpha; sft: packing...
    keys = [k for k in keys if config.get(k) is not None]
    options = ", ".join(f"`{k}={config[k]}`" for k in keys)
    env = record.get("environment") or {}
    params = record.get("parameters") or {}
    lines = [f"Options: {options}." if options else "Options: the defaults."]
    if params.get("total"):
        share = (params.get("trainable") or 0) / params["total"]
        lines.append(f"Parameters: {params['total'] / 1e6:.2f} M, of which {share:.1%} trained.")
    cost = []
    if record.get("wall_seconds") is not None:
        cost.append(f"{record['wall_seconds']:.0f} s of wall time")
    if record.get("peak_memory_mb") is not None:
        cost.append(f"a peak of {record['peak_memory_mb']:,.0f} MB of memory")
    if record.get("gpu_peak_mb") is not None:
        cost.append(f"{record['gpu_peak_mb']:,.0f} MB on the GPU")
    if cost:
        lines.append("The run took " + ", ".join(cost) + ".")
    history = (record.get("state") or {}).get("history") or []
    rewards = [row for row in history if isinstance(row.get("reward_mean"), (int, float))]
    if rewards:  # learning from rewards: where the reward ended, by function, and how much signal it gave
        last = rewards[-1]
        parts = [f"{last['reward_mean']:.3f} ± {last.get('reward_std', 0.0):.3f}"]
        parts += [f"{k.split('/', 1)[1]} {v:.3f}" for k, v in last.items() if k.startswith("reward/")]
        if "zero_std_share" in last:
            parts.append(f"groups with no signal {last['zero_std_share']:.0%}")
        lines.append(f"Training reward at step {last.get('step')} (first logged: {rewards[0]['reward_mean']:.3f}): "
                     + "; ".join(parts) + ".")
    if env:
        lines.append(f"Environment: Python {env.get('python')}, torch {env.get('torch')}, transformers {env.get('transformers')}"
                     f"{', peft ' + str(env['peft']) if env.get('peft') else ''}; {env.get('device')}, {env.get('precision')}, "
                     f"{env.get('threads')} CPU threads.")
    return "\n\n".join(lines)


def _evaluation_section(metrics: dict, record: dict) -> str:
    if not metrics:
        return "The run had no validation data, so it was not evaluated."
    table = "| metric | value |\n|---|---|\n" + "\n".join(f"| {k} | {v:.4f} |" for k, v in metrics.items())
    return f"On the validation data, with the weights of step {record.get('best_step')} (the best evaluation):\n\n{table}"


def _limitations(words: CardWords, data: dict) -> str:
    rows = (data.get("train") or {}).get("rows", 0)
    lines = [f"Trained on {rows:,} examples: small data gives results that vary from run to run and may not "
             "carry over to other text." if rows else "The size of the training data is not recorded."]
    lines.append("A fine-tuned model keeps what its pretrained base learned, biases included (chapter 3 of the "
                 "llmnb course measures one such probe); test it on the text you care about before using it.")
    if words.generative:
        lines.append("A small generative model makes facts up; it has no safety tuning.")
    return " ".join(lines)


def _task_option_names(task: str | None) -> list[str]:
    from dataclasses import fields

    from llmnb.core.task import get_task
    from llmnb.errors import ConfigError

    try:
        return [f.name for f in fields(get_task(task).Options)] if task else []
    except ConfigError:
        return []
