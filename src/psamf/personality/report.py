"""Human-readable output of a pretraining run: the side-by-side table and the model card."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from psamf.provenance import git_commit

PREDICTORS: tuple[tuple[str, str], ...] = (
    ("constant", "constant (train means)"),
    ("frozen_ridge", "frozen mean-pool + ridge"),
    ("fine_tuned", "fine-tuned encoder + head"),
)


def _epochs(metrics: dict[str, Any], cfg: dict[str, Any]) -> str:
    done = metrics.get("epochs_completed", cfg["epochs"])
    if done < cfg["epochs"]:
        return f"{done} of {cfg['epochs']} planned epochs (finished early on request)"
    return f"{cfg['epochs']} epochs"


def metrics_table(metrics: dict[str, Any], traits: tuple[str, ...] | list[str]) -> str:
    """Markdown table: one row per (split, predictor), mean and per-trait accuracy and R²."""
    short = [t[:5] for t in traits]
    header = (
        ["split", "predictor", "acc_mean", "r2_mean"]
        + [f"acc_{s}" for s in short]
        + [f"r2_{s}" for s in short]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for split in ("valid", "test"):
        entry = metrics.get(split)
        if not entry:
            continue
        for key, label in PREDICTORS:
            m = entry.get(key)
            if not m:
                continue
            cells = [f"{split} ({entry['clips']})", label, f"{m['acc_mean']:.4f}",
                     f"{m['r2_mean']:.4f}"]
            cells += [f"{m[f'acc_{t}']:.4f}" for t in traits]
            cells += [f"{m[f'r2_{t}']:.4f}" for t in traits]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def model_card(
    metrics: dict[str, Any], recipe: dict[str, Any], *, source: str, command: str
) -> str:
    """README.md for the encoder folder: what it is, how it was made, how well it does."""
    cfg = recipe["config"]
    traits = metrics["traits"]
    test = metrics["test"]["fine_tuned"]
    counts = metrics["counts"]
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    count_lines = "\n".join(
        f"- {name}: {c['clips']} clips, {c['empty']} empty transcript(s), "
        f"{c['truncated']} truncated to {cfg['max_tokens']} tokens"
        for name, c in counts.items()
    )
    pooled = "first token" if cfg["pooling"] == "first" else "mean over real tokens"
    return f"""# Personality encoder ({cfg['backbone']}, First Impressions V2)

A text encoder fine-tuned to read the Big Five ({', '.join(traits)}) from transcripts, with its
trait head. It is the personality encoder of PSA-MF: P is the last layer's {pooled}, and the head
reads P directly.

- Load: `AutoModel.from_pretrained(folder)`, `AutoTokenizer.from_pretrained(folder)`; the head:
  `psamf.personality.load_trait_head(folder)`; scores: `psamf.personality.predict_traits(folder,
  texts)`.
- Test (all {metrics['test']['clips']} clips): mean accuracy (1 − MAE) **{test['acc_mean']:.4f}**,
  mean R² **{test['r2_mean']:.4f}**.

## Data

ChaLearn First Impressions V2 transcripts (`{recipe['data']}`), trait scores in [0, 1].
Non-commercial research licence: these weights inherit it.

{count_lines}

Empty transcripts are left out of training; every predictor gives them the training means at
evaluation, so the figures below cover every clip of each split.

## Recipe

- backbone: `{cfg['backbone']}` (`{source}`)
- head: linear on P, activation `{cfg['activation']}`, started as the constant predictor
- loss `{cfg['loss']}`; AdamW, encoder lr {cfg['encoder_lr']}, head lr {cfg['head_lr']},
  weight decay {cfg['weight_decay']}; linear warmup ({cfg['warmup']} of the steps) then decay;
  gradient norm clipped at {cfg['grad_clip']}
- {_epochs(metrics, cfg)}, batch {cfg['batch_size']}, max {cfg['max_tokens']} tokens, seed
  {cfg['seed']}{', limit ' + str(cfg['limit']) + ' clips per split' if cfg['limit'] else ''}
- checkpoint selection: {metrics['selection']} — epoch {metrics['best_epoch']}; the test split
  was scored once, after selection

Command: `{command or '(library call)'}`

psamf commit: `{git_commit()}`; written {date}; this call took {metrics['seconds']:.0f} s, the
epochs {sum(h['seconds'] for h in metrics['history']):.0f} s.

## Metrics

{metrics_table(metrics, traits)}

The constant predictor already scores high mean accuracy on this corpus; R² and the margin over
the constant predictor are what show learning.
"""
