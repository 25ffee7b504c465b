"""The training core every job shares: options, the loop, its events, checkpoints, models, memory,
and the `Task` interface with the registry that the tasks of llmnb/tasks/ join.

Nothing here knows a particular task (classification, sft, ...) or draws anything: a job
(`llmnb.finetuning`, `llmnb.pretraining`) supplies data, model and evaluation through its task,
and the display listens to the events (tests/test_layers.py keeps it so).
"""
