"""Instruction and preference tuning of causal language models (chapter 10, tutorials/10_assistant.ipynb).

    chat.py        the data forms, the chat template, which tokens are trained
    packing.py     several examples per row, each attending only to itself
    sft.py         the `sft` task: answers only, packed, evaluated by exact match
    dpo.py         the `dpo` task: the DPO loss on (prompt, chosen, rejected)
    masking.py     `show_masking`: which tokens the loss covers, for learners and tests
    generation.py  greedy answers for evaluation; a streamed reply for chat
    result.py      `ChatResult`: `ft.generate`, `ft.chat`
    tasks.py       the two tasks by name

`llmnb.finetune(..., task="sft")` and `task="dpo"` run these through the same job and engine as
every other task; only the task object differs.
"""
