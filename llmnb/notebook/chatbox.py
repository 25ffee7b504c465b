"""A chat widget for an instruction-tuned model: a text box, Send, the conversation, Reset.

    ft = llmnb.finetune(gpt, "instructions", task="sft")
    llmnb.ChatBox(ft)              # last expression in a cell: the chat shows itself

Each Send adds the message to the conversation, asks the model for its answer (the whole
conversation so far is the prompt, in the model's chat template) and shows both. Reset starts a
new conversation. Without a browser: `box.send("...")` returns the answer and `box.messages`
holds the conversation. Only core ipywidgets are used (Jupyter, Colab, VS Code).
"""
from __future__ import annotations

from html import escape

import ipywidgets as w

from llmnb.errors import ConfigError, LlmnbError

_BUBBLE = "padding:4px 8px;margin:2px 0;border-radius:6px;white-space:pre-wrap;max-width:600px"
_ROLE_STYLE = {
    "user": "background:var(--jp-layout-color2,#eef);margin-left:60px",
    "assistant": "background:var(--jp-layout-color1,#fff);border:1px solid var(--jp-border-color2,#ccc)",
}


class ChatBox:
    """Talk to `model` (a result of `finetune(task='sft'|'dpo')`) in the notebook.

    max_new_tokens, temperature, top_p: as `ft.generate`. system: an optional system message
    that starts every conversation.

    Taught in chapter 10 (tutorials/10_assistant.ipynb).
    """

    def __init__(self, model, max_new_tokens: int = 64, temperature: float = 0.0, top_p: float = 1.0, system: str | None = None):
        if not hasattr(model, "generate") or not hasattr(model, "tokenizer"):
            raise ConfigError(
                f"ChatBox needs an instruction-tuned result (llmnb.finetune(..., task='sft')), not a {type(model).__name__}."
            )
        self.model, self.system = model, system
        self.options = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
        self.messages: list[dict] = []
        self.text = w.Text(placeholder="Ask something, then press Send (or Enter)", layout={"width": "480px"})
        self.send_button = w.Button(description="Send", button_style="primary")
        self.reset_button = w.Button(description="Reset")
        self.conversation = w.HTML()
        self.send_button.on_click(lambda _: self._send_from_box())
        self.reset_button.on_click(lambda _: self.reset())
        self.text.continuous_update = False
        self.text.observe(lambda change: self._send_from_box() if change["name"] == "value" and change["new"] else None, "value")
        self.widget = w.VBox([self.conversation, w.HBox([self.text, self.send_button, self.reset_button])])
        self.reset()

    def send(self, message: str) -> str:
        """Add `message` to the conversation and return the model's answer (also shown)."""
        if not isinstance(message, str) or not message.strip():
            raise ConfigError("The message is empty: type something to send.")
        self.messages.append({"role": "user", "content": message.strip()})
        prompt = ([{"role": "system", "content": self.system}] if self.system else []) + self.messages
        try:
            answer = self.model.generate(prompt, **self.options)
        except LlmnbError:
            self.messages.pop()
            raise
        self.messages.append({"role": "assistant", "content": answer})
        self._draw()
        return answer

    def reset(self) -> None:
        """Start a new conversation."""
        self.messages = []
        self._draw()

    def _send_from_box(self):
        message, self.text.value = self.text.value, ""
        if message.strip():
            try:
                self.send(message)
            except LlmnbError as error:
                self.conversation.value += f"<div style='color:var(--jp-error-color1,#e0484b)'>{escape(str(error))}</div>"

    def _draw(self):
        bubbles = "".join(
            f"<div style='{_BUBBLE};{_ROLE_STYLE[m['role']]}'><b>{'you' if m['role'] == 'user' else 'model'}:</b> "
            f"{escape(m['content'])}</div>"
            for m in self.messages
        )
        self.conversation.value = bubbles or "<i>No messages yet.</i>"

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
