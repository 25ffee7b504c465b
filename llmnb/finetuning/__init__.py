"""Fine-tuning a pretrained model on labelled data: `llmnb.finetune`, its options, data, tasks and result."""
