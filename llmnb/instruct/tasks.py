"""The instruction (`sft`) and preference (`dpo`) tasks by name, each holding its run's settings."""
from __future__ import annotations

from llmnb.instruct.dpo import DPO
from llmnb.instruct.sft import SFT

TASKS = {"sft": SFT, "dpo": DPO}


def make_task(config):
    """The task object of an instruction- or preference-tuning run (packing, beta... from `config`)."""
    return TASKS[config.task](config)
