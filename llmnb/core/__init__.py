"""The training core every job shares: options, the loop, its events, checkpoints, models, memory.

Nothing here knows about a task (classification, pretraining, ...) or draws anything: a job
(`llmnb.finetuning`, `llmnb.pretraining`) supplies data, model and evaluation, and the display
listens to the events.
"""
