"""`ChatResult`: what instruction and preference tuning return: a fine-tune you can talk to.

    ft.generate("Mia had a red ball. ... What colour was the ball?")   # the answer (greedy)
    ft.chat("What colour was the ball?")                                # streamed into the cell
    ft.chat([{"role": "user", "content": ...}, ...])                    # a whole conversation
    llmnb.ChatBox(ft)                                                   # a chat widget

`ft.save(folder)` writes the model and its tokenizer with the chat template, so
`AutoTokenizer.from_pretrained(folder).apply_chat_template(...)` formats prompts the same way.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from llmnb.finetuning.result import FineTuneResult
from llmnb.instruct.chat import as_messages


@dataclass(repr=False)  # FineTuneResult's short repr, not the dataclass's field dump
class ChatResult(FineTuneResult):
    """An instruction- or preference-tuned causal LM: generate, chat, evaluate, save, merge.

    Taught in chapter 10 (tutorials/10_assistant.ipynb).
    """

    def generate(self, prompt, max_new_tokens: int = 64, temperature: float = 0.0, top_p: float = 1.0, seed: int = 0,
                 stream: bool = False) -> str:
        """The model's answer to `prompt` (text, or a list of messages), in the chat template: only the
        new text, without the prompt, as every generate in llmnb; stripped of surrounding spaces.
        Stops at the end-of-text token. temperature 0 is greedy; above 0 samples (top_p: nucleus).

        A list of prompts (texts, or message lists) gives the list of their greedy answers, generated
        in left-padded batches: scoring a test set this way takes a fraction of the time of one call
        per prompt (chapter 11 scores 166 questions four times)."""
        from llmnb.errors import ConfigError
        from llmnb.instruct.generation import chat_reply, generate_answers

        if isinstance(prompt, (list, tuple)) and prompt and isinstance(prompt[0], (str, list, tuple)):
            if temperature or stream:
                raise ConfigError("generate() with a list of prompts answers them greedily in batches: leave "
                                  "temperature at 0 and stream off, or call it once per prompt to sample or stream.")
            return generate_answers(self.model, self.tokenizer, [as_messages(p, "user") for p in prompt], max_new_tokens)
        messages = as_messages(prompt, "user")
        return chat_reply(self.model, self.tokenizer, messages, max_new_tokens, temperature, top_p, seed, stream)

    def chat(self, message_or_messages, max_new_tokens: int = 64, temperature: float = 0.0, top_p: float = 1.0,
             seed: int = 0) -> str:
        """Like `generate`, but the answer streams into the cell token by token as it is written."""
        return self.generate(message_or_messages, max_new_tokens, temperature, top_p, seed, stream=True)

    @property
    def samples(self) -> list[dict]:
        """The last evaluation's answers beside their references (prompt, answer, reference)."""
        return list(self.state.samples)

    def _summary(self):
        rows = super()._summary()
        # The task's own options (sft: packing...; dpo: beta...), as the run used them.
        return rows + [(name, f"{value:g}" if isinstance(value, float) else str(value))
                       for name, value in asdict(self.task.options).items()]

    def _extra_html(self):
        from llmnb.display.notebook import samples_table

        return samples_table(self.state.samples, caption="answers at the last evaluation")
