"""llmnb's chat template: given to a tokenizer that has none (llmnb/instruct/chat.py) and to the
tiny Llama built for tests (core/models.py), so both format conversations the same way.

Plain-text markers: no new tokens, so a model pretrained on plain text needs no new embeddings.
"""
DEFAULT_CHAT_TEMPLATE = (
    "{% if bos_token %}{{ bos_token }}{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n\n"
    "{% elif message['role'] == 'user' %}User: {{ message['content'] }}\n"
    "{% else %}Assistant: {{ message['content'] }}{{ eos_token }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
