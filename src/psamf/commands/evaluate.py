"""``psamf evaluate``: metrics of a run's selected checkpoint(s) on any split of any dataset.

Examples::

    psamf evaluate runs/cpu-sample-psamf-20260101-120000
    psamf evaluate runs/my-mosi-run --data mosi --split all --json mosi-eval.json
    psamf evaluate runs/my-mosi-run --data mosei --seed 1     # cross-dataset (text + P only)
    psamf evaluate runs/my-clips-run --data mosi+mosei       # joined, and each dataset alone
    psamf evaluate runs/my-run --personality-encoder /backup/personality-minilm  # encoder moved
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from psamf.commands._args import ENCODER_FLAG, add_command, add_encoder_override, add_run_argument
from psamf.device import DEVICES_HELP
from psamf.errors import InputError

SPLIT_CHOICES = ("test", "valid", "train", "all")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(
        subparsers, "evaluate", doc=__doc__,
        help="evaluate a trained run (its validation-selected checkpoint) on a dataset split",
    )
    add_run_argument(p)
    add_encoder_override(p)
    p.add_argument("--data", default=None,
                   help="sample, mosi, mosei or a folder (default: the run's own data and limits)")
    p.add_argument("--root", default=None, help="folder holding named datasets")
    p.add_argument("--labels-encoding", default="utf-8", metavar="ENCODING",
                   help="text encoding of --data's label.csv (default utf-8; e.g. latin-1)")
    p.add_argument("--split", choices=SPLIT_CHOICES, default="test")
    p.add_argument("--seed", type=int, default=None, help="one seed of the run (default: all)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write JSON here")
    p.add_argument("--device", default="auto", help=DEVICES_HELP)
    p.set_defaults(func=run)


def check_modalities(model_widths: dict[str, int], dataset) -> None:
    """The data must carry every modality the model uses, at the same width."""
    widths = dataset.modality_widths()
    for name, width in model_widths.items():
        if name not in widths:
            raise InputError(
                f"dataset {dataset.name!r} has no {name} features but the run's model uses {name} "
                f"(d={width}); evaluate on data with {name}, or train a model with "
                f"model.text_only=true"
            )
        if widths[name] != width:
            raise InputError(
                f"dataset {dataset.name!r}: {name} features have width {widths[name]} but the "
                f"run's model expects {width}; these features come from a different extractor"
            )


def check_profile(run: Path, model_widths: dict[str, int], dataset) -> None:
    """A model that reads audio/vision must get features from the extractors it was trained on:
    the dataset's feature profile (psamf extract) must equal the one run.json recorded."""
    from psamf.media.profile import comparable, short
    from psamf.training.runs import recorded_feature_profile

    if not model_widths:
        return  # a text-only model reads no frame features
    trained = recorded_feature_profile(run)
    if comparable(trained) != comparable(dataset.profile):
        raise InputError(
            f"dataset {dataset.name!r} has features from {short(dataset.profile)} but run {run} "
            f"was trained on {short(trained)}; re-extract with the run's settings (psamf "
            "extract) or evaluate a run trained on these features"
        )


def run(args: argparse.Namespace) -> int:
    from psamf.data import part_indices
    from psamf.device import resolve_device
    from psamf.io import write_json
    from psamf.metrics import grouped_regression_metrics
    from psamf.training.config import DataConfig
    from psamf.training.prepare import (
        encode_splits,
        load_multimodal,
        personality_embeddings,
        subset_splits,
    )
    from psamf.training.reports import SYNTHETIC_BANNER, markdown_table, summarize
    from psamf.training.runs import (
        best_weights,
        check_writable,
        load_config,
        load_trained_model,
        locate_personality_encoder,
        personality_check,
        quiet_transformers,
    )
    from psamf.training.trainer import evaluate_split

    quiet_transformers(getattr(args, "verbose", False))

    config = locate_personality_encoder(args.run, load_config(args.run),
                                        args.personality_encoder, how=ENCODER_FLAG)
    if args.json is not None:
        check_writable(args.json.parent)  # refuse before minutes of evaluation, not after
    seeds = [args.seed] if args.seed is not None else list(config.seeds)
    for seed in seeds:
        if seed not in config.seeds:
            raise InputError(f"seed {seed} is not part of run {args.run}; its seeds are "
                             f"{list(config.seeds)}")
        best_weights(args.run, seed)  # fail early on a seed with no selected checkpoint
    data_config = config.data if args.data is None else DataConfig(
        name=args.data, root=args.root, labels_encoding=args.labels_encoding)
    dataset = load_multimodal(data_config.name, data_config.root, data_config.labels_encoding)
    check_modalities(config.model.modality_widths(), dataset)
    check_profile(args.run, config.model.modality_widths(), dataset)
    eval_config = dataclasses.replace(config, data=data_config)
    splits = subset_splits(eval_config, dataset)
    wanted = ["train", "valid", "test"] if args.split == "all" else [args.split]
    splits = {name: splits[name] for name in wanted}
    personality = None
    if config.uses_personality():
        check = personality_check(args.run, how=ENCODER_FLAG)
        personality = personality_embeddings(config, splits, check=check)[0]
    encoded = encode_splits(config.model, splits, personality)
    device = resolve_device(args.device)
    per_seed: list[dict] = []
    # datasets joined by '+': {(split, dataset): that dataset's rows over the seeds}
    per_part: dict[tuple[str, str], list[dict]] = {}
    for seed in seeds:
        _, _, model = load_trained_model(args.run, seed, device=str(device))
        row: dict = {"seed": seed}
        for name in wanted:
            row[name], preds = evaluate_split(
                model, encoded[name], device=device,
                batch_size=config.eval_batch_size or config.batch_size)
            groups = part_indices(splits[name].ids, dataset.parts) if dataset.parts else {}
            for part, metrics in grouped_regression_metrics(preds, splits[name].labels,
                                                            groups).items():
                per_part.setdefault((name, part), []).append({"seed": seed, name: metrics})
        per_seed.append(row)
    if dataset.synthetic:
        print(f"*** {SYNTHETIC_BANNER} ***")
    results, by_dataset = {}, {}
    for name in wanted:
        results[name] = summarize(per_seed, name)
        title = f"{args.run} on {dataset.name}, split {name} ({len(splits[name])} utterances)"
        print(markdown_table(results[name], title=title))
        for part in dataset.parts:
            rows = per_part.get((name, part))
            if rows:
                size = rows[0][name]["utterances"]
                table = by_dataset.setdefault(name, {})[part] = {
                    "utterances": size, **summarize(rows, name)}
                print(markdown_table(table, title=f"split {name}, {part} alone ({size} "
                                                  "utterances)"))
    if args.json is not None:
        record = {"run": str(args.run), "dataset": dataset.name,
                  "synthetic": dataset.synthetic, "splits": results}
        if by_dataset:
            record["splits_by_dataset"] = by_dataset
        write_json(args.json, record)
        print(f"wrote {args.json}")
    return 0
