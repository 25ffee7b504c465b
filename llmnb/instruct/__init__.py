"""What instruction and preference tuning of causal language models are made of (chapter 10,
tutorials/10_assistant.ipynb); the tasks themselves are llmnb/tasks/sft.py and llmnb/tasks/dpo.py.

    chat.py        the data forms, the chat template, which tokens are trained
    packing.py     several examples per row, each attending only to itself
    masking.py     `show_masking`: which tokens the loss covers, for learners and tests
    generation.py  greedy answers for evaluation; a streamed reply for chat
    result.py      `ChatResult`: `ft.generate`, `ft.chat`
"""
