"""The ``free3d`` command."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

from . import __version__
from .device import DEVICE_HELP


def _prepare_bandai(args: argparse.Namespace) -> None:
    from .data.prepare import format_summary, prepare_dataset
    from .data.sources.bandai_namco import SOURCE, load_bandai_namco
    from .skeleton import BANDAI21

    t0 = time.perf_counter()
    takes = load_bandai_namco(args.src, workers=args.workers, progress=not args.quiet)
    summary = prepare_dataset(takes, args.out, skeleton=BANDAI21, source=SOURCE, seed=args.seed,
                              overwrite=args.overwrite, progress=not args.quiet)
    print(format_summary(summary))
    print(f"wrote {args.out} in {time.perf_counter() - t0:.1f} s (reading included)")


def _prepare_humanml3d(args: argparse.Namespace) -> None:
    from .data.prepare import format_summary, prepare_dataset
    from .data.sources.humanml3d import load_humanml3d

    t0 = time.perf_counter()
    takes, dropped, skeleton = load_humanml3d(args.src, dataset=args.dataset, units=args.units,
                                              fps=args.fps, progress=not args.quiet)
    source = "kit" if skeleton.name == "kit21" else "humanml3d"
    summary = prepare_dataset(takes, args.out, skeleton=skeleton, source=source, seed=args.seed,
                              overwrite=args.overwrite, dropped=dropped, progress=not args.quiet)
    print(format_summary(summary))
    print(f"wrote {args.out} in {time.perf_counter() - t0:.1f} s (reading included)")


def _prepare_procedural(args: argparse.Namespace) -> None:
    from .data.prepare import format_summary, prepare_dataset
    from .data.sources.procedural import SOURCE, procedural_takes
    from .skeleton import get_skeleton

    skeleton = get_skeleton(args.skeleton)
    takes = procedural_takes(skeleton=skeleton, clips_per_kind=args.clips_per_kind, seed=args.seed)
    summary = prepare_dataset(takes, args.out, skeleton=skeleton, source=SOURCE, seed=args.seed,
                              overwrite=args.overwrite, progress=not args.quiet)
    print(format_summary(summary))


def _prepare_keypoints(args: argparse.Namespace) -> None:
    from .data.sources.keypoint_files import format_keypoint_summary, prepare_keypoints

    summary = prepare_keypoints(args.src, args.captions, args.out, layout=args.layout,
                                fps=args.fps, split=args.split, seed=args.seed,
                                overwrite=args.overwrite, progress=not args.quiet)
    print(format_keypoint_summary(summary))


def _show(args: argparse.Namespace) -> None:
    from .export.preview import preview_prepared_clip

    out = preview_prepared_clip(args.dataset, args.clip_id, args.out, fmt=args.format)
    print(f"wrote {out}")


def _pack(args: argparse.Namespace) -> None:
    from .data.pack import pack_dataset

    print(pack_dataset(args.dataset, args.file, overwrite=args.overwrite,
                       progress=not args.quiet).describe())


def _unpack(args: argparse.Namespace) -> None:
    from .data.pack import unpack_dataset
    from .data.prepared import read_records

    t0 = time.perf_counter()
    out = unpack_dataset(args.file, args.dataset, progress=not args.quiet)
    print(f"unpacked {len(read_records(out))} clips into {out} in {time.perf_counter() - t0:.1f} s; "
          "every array matches the checksum it was packed with (exact)")


def _demo(args: argparse.Namespace) -> None:
    """Until a trained model is bundled, the main job shows the data path end to end."""
    from .data.prepare import format_summary, prepare_dataset
    from .data.sources.procedural import SOURCE, procedural_takes
    from .export.preview import preview_prepared_clip
    from .skeleton import get_skeleton

    out = Path(args.out)
    skeleton = get_skeleton(args.skeleton)
    takes = procedural_takes(skeleton=skeleton, clips_per_kind=6, seed=args.seed)
    summary = prepare_dataset(takes, out / "dataset", skeleton=skeleton, source=SOURCE,
                              seed=args.seed, overwrite=True, progress=False)
    print(format_summary(summary))
    for clip_id in ("walk_000", "wave_003", "jump_001"):
        for fmt in ("png", "gif"):
            path = preview_prepared_clip(out / "dataset", clip_id, out / f"{clip_id}.{fmt}", fmt=fmt)
            print(f"wrote {path}")


def _training_run_options(q: argparse.ArgumentParser) -> None:
    """Options every DDP-capable training stage shares: device, precision, logging."""
    q.add_argument("--device", default="auto", help=DEVICE_HELP + "; weights are saved device-free. "
                   "Several GPUs or machines: launch with torchrun --nproc-per-node N -m free3d "
                   "train ...; --batch-size is then the global batch")
    q.add_argument("--precision", choices=("fp32", "bf16"),
                   help="fp32 (default; TF32 matmuls on CUDA) or bf16 autocast (the quantizer "
                        "stays fp32)")
    q.add_argument("--log-every", type=int, help="steps between log.csv rows")
    q.add_argument("--warmup-iters", type=int, help="steps of linear learning-rate warm-up "
                   "(default: the preset's)")
    q.add_argument("--quiet", action="store_true")


TEXT_ENCODER_HELP = ("minilm-sided (the generator's default: MiniLM with left and right made loud, "
                     "what a mirror keeps and what it flips, 768-d), minilm (the evaluator's "
                     "default) or clip; each may take :PATH to local weights")
BALANCE_HELP = ("draw clips whose captions few other clips share more often: weight (clips with "
                "similar captions) ** -B; 0 = uniformly (the paper), 0.5 = square-root balancing "
                "(the default of the ML-RQ's free3d recipe and of the transformers; "
                "free3d.data.balance)")


def _train(args: argparse.Namespace) -> None:
    from .training.lifting import make_config, train

    overrides = {k: getattr(args, k, None) for k in (
        "iters", "finetune_iters", "batch_size", "window", "window_max", "seed", "lr", "representation",
        "prior_kind", "prior", "feat_encoder", "input_dim", "beta", "checkpoint_every",
        "lambda_bone", "lambda_knee", "lambda_prop", "lambda_iso", "lambda_rec", "lambda_ori", "lambda_feat",
        "init_from", "lambda_cycle", "lambda_floor", "lambda_skate", "log_every", "precision", "warmup_iters",
        "grad_clip", "std_floor", "skip_spikes", "balance", "cycle_fixed_root", "l2d_units",
        "lambda_joints2d")}
    if getattr(args, "upright_views", False):
        overrides["upright_views"] = True
    if getattr(args, "no_upright_views", False):
        overrides["upright_views"] = False
    if getattr(args, "mirror_clips", False):
        overrides["mirror_clips"] = True
    for flag in ("rec", "ori", "feat"):
        if getattr(args, f"no_{flag}", False):
            overrides[f"use_{flag}"] = False
    arch = {"width": args.width, "code_dim": args.code_dim,
            "codebook_size": args.codebook_size, "down": args.down,
            "dead_code_threshold": args.dead_code_threshold}
    cfg = make_config(args.stage, args.data, preset=args.preset, arch=arch,
                      recipe=getattr(args, "recipe", "free3d"), **overrides)
    out = train(cfg, args.out, progress=not args.quiet, device=args.device)
    print(f"trained {cfg.stage} ({cfg.total_iters} steps) in {out}")


def _train_generator(args: argparse.Namespace) -> None:
    from .training.generation import make_generator_config, train_generator

    overrides = {k: getattr(args, k, None) for k in (
        "iters", "batch_size", "lr", "seed", "checkpoint_every", "log_every", "text_encoder",
        "precision", "warmup_iters", "token_view", "balance")}
    if getattr(args, "mirror", False):
        overrides["mirror"] = True
    cfg = make_generator_config(args.stage, args.data, args.mlrq, preset=args.preset, **overrides)
    out = train_generator(cfg, args.out, progress=not args.quiet, device=args.device)
    print(f"trained {cfg.stage} ({cfg.iters} steps) in {out}")


def _train_evaluator(args: argparse.Namespace) -> None:
    from .training.evaluator import EvaluatorTrainConfig, train_evaluator

    overrides = {k: getattr(args, k) for k in ("iters", "batch_size", "lr", "seed", "text_encoder")
                 if getattr(args, k) is not None}
    cfg = EvaluatorTrainConfig(data=args.data, **overrides)
    out = train_evaluator(cfg, args.out, progress=not args.quiet, device=args.device)
    print(f"trained evaluator ({cfg.iters} steps) in {out}")


def _assemble(args: argparse.Namespace) -> None:
    from .api import assemble_model

    card = Path(args.card).read_text(encoding="utf-8") if args.card else None
    out = assemble_model(mlrq=args.mlrq, masked=args.masked, residual=args.residual,
                         length=args.length, out=args.out, card=card)
    print(f"wrote {out}")


GENERATE_BATCH = 128  # motions sampled together; whole prompts, each saved when done
SAMPLING_OPTIONS = ("guidance", "residual_guidance", "iterations", "temperature", "top_k")


def _sampling_options(args: argparse.Namespace) -> dict:
    """The sampling options given on the command line, each checked (one error naming it)."""
    from .sampling import check_sampling_value

    return {k: check_sampling_value(k, getattr(args, k), "--" + k.replace("_", "-"))
            for k in SAMPLING_OPTIONS if getattr(args, k) is not None}


def _generate(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from .api import Free3D, check_prompt, check_seed, read_prompts, seconds_to_frames
    from .data.canonical import MAX_FRAMES
    from .export.generated import (
        HTML_NAME,
        check_output_dir,
        output_stem,
        parse_formats,
        save_html,
        save_motions,
    )

    # everything is checked before the model loads or a file is written
    formats = parse_formats(args.format)
    per_motion = [f for f in formats if f != "html"]  # html: one file for the whole call, at the end
    if args.seconds is not None:
        try:
            seconds_to_frames(args.seconds)
        except ValueError as e:
            raise ValueError(f"--seconds: {e}") from None
    prompts = [(check_prompt(t), args.seconds) for t in args.text]
    if args.prompts:
        prompts += read_prompts(args.prompts)
    if not prompts:
        raise ValueError("no prompt: give TEXT or --prompts FILE")
    frames = [MAX_FRAMES if s is None else seconds_to_frames(s) for _, s in prompts]
    n = args.num_samples
    if n < 1:
        raise ValueError(f"--num-samples must be at least 1, got {n}")
    check_seed(args.seed, n, "--seed")
    sampling = _sampling_options(args)
    names = [f"{output_stem(p, t, args.seed + k)}.{fmt}" for p, (t, _) in enumerate(prompts)
             for k in range(n) for fmt in per_motion] + [HTML_NAME] * ("html" in formats)
    check_output_dir(args.out, names, overwrite=args.overwrite)
    model = Free3D.from_pretrained(args.model, precision=args.precision, device=args.device,
                                   ground=not args.no_ground)
    model.check_batch(n, max(frames), label=f"--num-samples {n}")  # the limit follows from free memory

    # whole prompts per batch, each batch saved as it finishes: a kill keeps what was done
    per_batch = max(1, min(GENERATE_BATCH, model.max_batch(max(frames))[0]) // n)
    batches = [range(i, min(i + per_batch, len(prompts))) for i in range(0, len(prompts), per_batch)]
    motions, numbers, files, seconds = [], [], [], 0.0
    made_out = not Path(args.out).exists()
    with tqdm(total=len(prompts) * n, desc="generating", unit="motion",
              disable=args.quiet or len(batches) == 1) as bar:
        for b, batch in enumerate(batches):
            t0 = time.perf_counter()
            got = model.generate([prompts[p][0] for p in batch], [prompts[p][1] for p in batch],
                                 seed=args.seed, num_samples=n, foot_lock=not args.no_foot_lock,
                                 **sampling)
            seconds += time.perf_counter() - t0
            got_numbers = [p for p in batch for _ in range(n)]
            try:
                files += save_motions(got, args.out, per_motion, prompt_numbers=got_numbers,
                                      replace=args.overwrite and b == 0)
            except OSError as e:  # a full disk, a folder removed meanwhile: no traceback
                if made_out and not files:  # nothing saved: not even the folder stays
                    with contextlib.suppress(OSError):
                        os.rmdir(args.out)
                raise ValueError(f"cannot write to --out {args.out}: {e.strerror or e}") from None
            motions += got
            numbers += got_numbers
            bar.update(len(got))
    if "html" in formats:
        files.append(save_html(motions, args.out, prompt_numbers=numbers))
    elif args.overwrite:  # an earlier call's viewer would show motions that are gone
        (Path(args.out) / HTML_NAME).unlink(missing_ok=True)
    print(f"generated {len(motions)} motion(s) in {seconds:.2f} s")
    for m, p in zip(motions, numbers):
        print(f"  [{p}] {m.text!r} seed {m.seed}: {m.seconds:.2f} s ({m.num_frames} frames)")
    print(f"wrote {len(files)} file(s) to {args.out}")


def _edit(args: argparse.Namespace) -> None:
    import numpy as np

    from .api import Free3D, check_prompt, check_seed
    from .export import generated as written

    # everything is checked before the model loads or a file is written
    formats = written.parse_formats(args.format)
    per_motion = [f for f in formats if f != "html"]
    text = check_prompt(args.text)
    check_seed(args.seed, 1, "--seed")
    sampling = _sampling_options(args)
    path = Path(args.input)
    if path.suffix.lower() != ".npy" or not path.is_file():
        raise ValueError(f"{args.input}: not a .npy file of (T, J, 3) joints (as generate and lift write)")
    try:
        joints = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{args.input}: cannot read it as .npy: {e}") from None
    names = [f"{written.output_stem(0, text, args.seed)}.{fmt}" for fmt in per_motion]
    written.check_output_dir(args.out, names + [written.HTML_NAME] * ("html" in formats),
                             overwrite=args.overwrite)
    model = Free3D.from_pretrained(args.model, precision=args.precision, device=args.device)
    try:
        edited = model.edit(joints, args.start, args.end, text, seed=args.seed, **sampling)
    except ValueError as e:
        raise ValueError(f"{args.input}: {e}") from None
    files = written.save_motions([edited], args.out, per_motion, prompt_numbers=[0], replace=args.overwrite)
    if "html" in formats:
        files.append(written.save_html([edited], args.out, prompt_numbers=[0]))
    print(f"edited {args.start:g}-{args.end:g} s of {args.input} as {text!r} (seed {args.seed})")
    print(f"wrote {len(files)} file(s) to {args.out}")


def _lift(args: argparse.Namespace) -> None:
    from .export.generated import check_output_dir, parse_formats
    from .export.lifted import lift_keypoints, load_lifter, output_names, save_lifted
    from .keypoints import read_keypoints

    # everything is checked before the model loads or a file is written
    formats = parse_formats(args.format)
    image_size = None
    if args.image_size:
        try:
            w, h = (float(v) for v in args.image_size.lower().split("x"))
        except ValueError:
            raise ValueError(f"--image-size must be WIDTHxHEIGHT, got {args.image_size!r}") from None
        image_size = (w, h)
    stem = Path(args.input).stem or "lifted"
    names = output_names(stem, formats)
    # --out before the input: reading a video runs the detector over every frame
    check_output_dir(args.out, names, overwrite=args.overwrite)
    if Path(args.input).resolve() in {(Path(args.out) / n).resolve() for n in names}:
        raise ValueError(f"--out {args.out}: {Path(args.input).name} would replace the input; "
                         "choose another --out")
    kp = read_keypoints(args.input, layout=args.layout, person=args.person, fps=args.fps,
                        y_up=args.y_up, image_size=image_size)
    lifter, skeleton = load_lifter(args.model)
    motion = lift_keypoints(kp, lifter, skeleton, foot_lock=not args.no_foot_lock)
    files = save_lifted(motion, args.out, stem, formats, source=args.input, layout=kp.layout,
                        input_fps=kp.fps, notes=kp.notes)
    for note in kp.notes:
        print(f"note: {note}")
    missing = float((motion.confidence == 0).mean())
    print(f"lifted {args.input} ({kp.layout}, {kp.fps:g} fps): {len(motion.joints)} frames at "
          f"{motion.fps:g} fps, {100 * missing:.1f}% of joints missing or guessed")
    print(f"wrote {len(files)} file(s) to {args.out}")


def _serve(args: argparse.Namespace) -> None:
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn", "python_multipart") if importlib.util.find_spec(m) is None]
    if missing:  # an optional extra: one clear line, not an ImportError's traceback
        raise ValueError(f"free3d serve needs the serve extra ({', '.join(missing)} missing): "
                         "pip install 'free3d[serve]'")
    from .serve import serve

    if not args.max_upload_mb > 0:
        raise ValueError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    for option in ("queue", "keep"):
        if getattr(args, option) < 1:
            raise ValueError(f"--{option} must be at least 1, got {getattr(args, option)}")
    serve(host=args.host, port=args.port, model=args.model, device=args.device, precision=args.precision,
          out=args.out, max_body=int(args.max_upload_mb * 1024 * 1024), max_queue=args.queue,
          keep_jobs=args.keep)


def check_output_file(path: str, option: str) -> None:
    """Before any work: ``path`` can be written (its folder exists and takes a file)."""
    import tempfile

    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{option} {path} is a folder, not a file")
    if not target.parent.is_dir():
        raise ValueError(f"{option} {path}: no folder {target.parent}")
    try:  # a real test: permissions say nothing for root, and /proc refuses whatever they say
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(f"{option} {path} cannot be written: {e.strerror or e}") from None


def _eval_lift(args: argparse.Namespace) -> None:
    import json

    from .evaluation.lift import evaluate_lifting

    if args.json:
        check_output_file(args.json, "--json")
    outputs = [(False, False)] + [(True, False)] * args.keep_2d + [(False, True)] * args.rigid_depth
    variants = [(k, r, f) for k, r in outputs for f in (False, True)[:1 + args.mirror_average]]
    rows = [evaluate_lifting(args.data, model_path=m, split=args.split, progress=not args.quiet,
                             keep_2d=k, rigid=r, mirror_average=f, device=args.device)
            for k, r, f in variants for m in args.model]
    rows += [evaluate_lifting(args.data, reference=r, split=args.split, progress=not args.quiet)
             for r in args.reference]
    if not rows:
        raise ValueError("nothing to evaluate: give --model RUN and/or --reference NAME")
    print("| model | clips | MPJPE (mm) | PA-MPJPE (mm) | depth corr | depth slope | mirrored "
          "clips | root path (mm) | root drift (mm) |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['clips']} | {r['mpjpe_mm']:.1f} | {r['pa_mpjpe_mm']:.1f} | "
              f"{r['depth_corr']:.2f} | {r['depth_slope']:.2f} | {r['mirrored_clips']} | "
              f"{r['root_path_mm']:.0f} | {r['root_drift_mm']:.0f} |")
    print(f"(the true clips' root drift: {rows[0]['true_root_drift_mm']:.0f} mm)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


def labelled(specs: list[str], option: str) -> dict[str, str]:
    """{label: path} from repeated LABEL=DIR options."""
    out = {}
    for spec in specs:
        label, sep, path = spec.rpartition("=")
        if not sep or not label:
            raise ValueError(f"{option} takes LABEL=DIR, got {spec!r}")
        out[label] = path
    return out


def _eval_physics(args: argparse.Namespace) -> None:
    import json

    import numpy as np
    from tqdm import tqdm

    from .api import Free3D
    from .data.canonical import FPS
    from .data.ground_truth import load_motion3d
    from .data.motion2d import load_clip2d
    from .data.prepared import read_captions, read_meta, read_records
    from .evaluation.physics import TABLE_HEADER, clip_physics, format_rows, output_stage_rows, summarize
    from .skeleton import get_skeleton

    models = labelled(args.model, "--model")
    recon = labelled(args.reconstruction, "--reconstruction")
    if args.json:
        check_output_file(args.json, "--json")
    if not (args.real or models or recon):
        raise ValueError("nothing to evaluate: give --real, --model LABEL=DIR and/or "
                         "--reconstruction LABEL=DIR")
    if args.max_clips is not None and args.max_clips < 1:
        raise ValueError(f"--max-clips must be at least 1, got {args.max_clips}")
    skeleton = get_skeleton(read_meta(args.data)["skeleton"])
    records = [r for r in read_records(args.data) if r.split == args.split]
    if args.max_clips is not None and args.max_clips < len(records):  # an even, fixed subset
        records = [records[i] for i in np.linspace(0, len(records) - 1, args.max_clips).round().astype(int)]
    groups = [r.labels.get("content", "all") for r in records]
    sources: list[tuple[str, list[np.ndarray]]] = []
    if args.real:
        sources.append(("real", [load_motion3d(args.data, r.id) for r in records]))
    for label, path in models.items():
        # decoded without grounding, grounded here: both rows come from the same samples
        model = Free3D.from_pretrained(path, precision=args.precision, device=args.device, ground=False)
        captions = [read_captions(args.data, r.id)[0] for r in records]
        motions = []
        for i in tqdm(range(0, len(records), 32), desc=f"generating ({label})", disable=args.quiet):
            got = model.generate(captions[i:i + 32], [r.frames / FPS for r in records[i:i + 32]],
                                 seed=args.seed + i, foot_lock=False)
            motions += [m.joints for m in got]
        sources += output_stage_rows(label, motions, skeleton)
    for label, path in recon.items():
        model = Free3D.from_pretrained(path, device=args.device, ground=False)
        motions = []
        for r in tqdm(records, desc=f"lifting ({label})", disable=args.quiet):
            clip = load_clip2d(args.data, r.id)
            motions.append(model.reconstruct(clip.trajectory, clip.limbs))
        sources += output_stage_rows(label, motions, skeleton)
    lines, results = [TABLE_HEADER], {}
    for label, motions in sources:
        summary = summarize([clip_physics(m, skeleton) for m in motions], groups)
        results[label] = summary
        lines += format_rows(label, summary)
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


def _eval_generation(args: argparse.Namespace) -> None:
    """Table 1 (``eval generation``) or the rows of tables 3 to 5 (``eval ablations``)."""
    import json

    from .api import DEFAULT_MODEL, Free3D
    from .evaluation.generation import (
        ABLATION_COLUMNS,
        COLUMNS,
        GenerationEvalConfig,
        evaluate_generation,
        format_table,
    )

    models = labelled(args.model, "--model")
    recon = labelled(args.reconstruction, "--reconstruction")
    cfg = GenerationEvalConfig(split=args.split, repeats=args.repeats, mm_texts=args.mm_texts,
                               mm_generations=args.mm_generations, pool=args.pool, seed=args.seed)
    if cfg.repeats < 1:
        raise ValueError(f"--repeats must be at least 1, got {cfg.repeats}")
    if args.out:  # before any work: OUT.md, OUT.json and OUT.progress.json can be written there
        out = Path(args.out)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ValueError(f"--out {args.out}: cannot make {out.parent}: {e.strerror or e}") from None
        check_output_file(str(out.with_suffix(".md")), "--out")
    loaded = {label: Free3D.from_pretrained(path, precision=args.precision, device=args.device)
              for label, path in models.items()}
    # With --out, finished steps are kept in OUT.progress.json so that an interrupted run resumes.
    progress_file = None
    if args.out:
        progress_file = Path(args.out).with_suffix(".progress.json")
        progress_file.parent.mkdir(parents=True, exist_ok=True)
    rows = evaluate_generation(
        args.data, args.evaluator, loaded, cfg, progress=not args.quiet, resume=progress_file,
        fingerprint={"models": models, "reconstructions": recon, "precision": args.precision,
                     "what": args.what},
        reconstructions={label: Free3D.from_pretrained(path, device=args.device)
                         for label, path in recon.items()},
        device=args.device)
    columns = COLUMNS
    if args.what == "ablations":  # table 5's MPJPE: each model's ML-RQ lifting the 2D test clips
        from .evaluation.lift import evaluate_lifting

        columns = ABLATION_COLUMNS
        for row in rows[1:-1]:
            path = models.get(row["model"], recon.get(row["model"]))
            root = DEFAULT_MODEL if path in ("default", "") else Path(path)
            lift = evaluate_lifting(args.data, model_path=root / "mlrq", split=args.split,
                                    progress=not args.quiet, device=args.device)
            # one deterministic pass over the test clips: a value without an interval
            row["mpjpe"] = (lift["mpjpe_mm"], None)
            row["pa_mpjpe"] = (lift["pa_mpjpe_mm"], None)
    table = format_table(rows, columns)
    meta = rows[-1]
    text = (f"{table}\n\n{meta['clips']} {args.split} clips, {cfg.repeats} repeats (mean ± 1.96 std / "
            f"sqrt(repeats)); evaluation took {meta['seconds']:.0f} s\n")
    print(text, end="")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text(text)
        summary = {"models": models, "reconstructions": recon, "rows": rows}
        out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
        progress_file.unlink(missing_ok=True)


def _skeletons(args: argparse.Namespace) -> None:
    from .skeleton import SKELETONS

    for s in SKELETONS.values():
        print(f"{s.name}: {s.num_joints} joints, root {s.joint_names[0]}. {s.description}")
        if args.verbose:
            for j, (name, p) in enumerate(zip(s.joint_names, s.parents)):
                print(f"  {j:2d} {name:<14} parent {s.joint_names[p] if p >= 0 else '-'}")


def add_device(q: argparse.ArgumentParser, *, precision: bool = True) -> None:
    """``--device`` of an inference command (checked in :func:`main`, before any work)."""
    from .device import DEVICE_HELP

    note = "; on CUDA, --precision auto is fp32 weights with TF32 matmuls" if precision else ""
    q.add_argument("--device", default="auto", help=DEVICE_HELP + note)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="free3d", description=__doc__)
    p.add_argument("--version", action="version", version=f"free3d {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="prepare and inspect datasets").add_subparsers(
        dest="data_command", required=True)
    prep = data.add_parser("prepare", help="turn a source dataset into free3d's prepared format")
    prep_sub = prep.add_subparsers(dest="source", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--out", required=True, help="folder to create")
        q.add_argument("--seed", type=int, default=0, help="cameras, captions and splits")
        q.add_argument("--overwrite", action="store_true", help="replace an existing --out")
        q.add_argument("--quiet", action="store_true", help="no progress bars")

    q = prep_sub.add_parser("bandai-namco", help="Bandai-Namco Research Motion Dataset (BVH)")
    q.add_argument("--src", required=True,
                   help="the dataset folders, one .tar.xz archive, or a folder of the archives")
    q.add_argument("--workers", type=int, default=None, help="parser processes (default: cores)")
    common(q)
    q.set_defaults(func=_prepare_bandai)

    q = prep_sub.add_parser("humanml3d", help="HumanML3D or KIT-ML (new_joints + texts + splits)")
    q.add_argument("--src", required=True, help="folder with new_joints/, texts/, train.txt ...")
    q.add_argument("--dataset", choices=("auto", "humanml3d", "kit"), default="auto")
    q.add_argument("--units", choices=("auto", "m", "mm"), default="auto")
    q.add_argument("--fps", type=float, default=None, help="source frame rate (20; KIT 12.5)")
    common(q)
    q.set_defaults(func=_prepare_humanml3d)

    q = prep_sub.add_parser("procedural", help="tiny synthetic walk/wave/jump dataset")
    q.add_argument("--skeleton", default="bandai21")
    q.add_argument("--clips-per-kind", type=int, default=8)
    common(q)
    q.set_defaults(func=_prepare_procedural)

    q = prep_sub.add_parser("keypoints", help="2D keypoint files (COCO-17, OpenPose, MediaPipe, "
                            ".npy) + captions: a 2D-only dataset for training, no 3D")
    q.add_argument("--src", required=True,
                   help="folder of keypoint files, one clip per file (or per OpenPose folder)")
    q.add_argument("--captions", required=True,
                   help="'<file stem>#caption' lines (several per clip allowed) or a JSON "
                        "{stem: [captions]}; files without captions are skipped")
    q.add_argument("--layout", default=None, help="coco17, body25, mediapipe33 or bandai21 "
                   "(default: detected per file)")
    q.add_argument("--fps", type=float, default=None,
                   help="frame rate of the files (default: what a file records, else 30)")
    q.add_argument("--split", choices=("train", "val", "test"), default=None,
                   help="put every clip in this split (default: about 90/10 train/test by "
                        "hashed file stem)")
    common(q)
    q.set_defaults(func=_prepare_keypoints)

    q = data.add_parser("show", help="render a prepared clip: 3D beside its 2D view")
    q.add_argument("dataset", help="prepared dataset folder")
    q.add_argument("clip_id")
    q.add_argument("--out", default=None, help="output file (default ./<clip-id>.<format>)")
    q.add_argument("--format", choices=("gif", "png", "mp4"), default="gif")
    q.set_defaults(func=_show)

    q = data.add_parser("pack", help="a prepared dataset as one compressed file (exact)")
    q.add_argument("dataset", help="prepared dataset folder")
    q.add_argument("file", help="file to write (a tar.xz; e.g. bandai-namco.f3d)")
    q.add_argument("--overwrite", action="store_true", help="replace an existing file")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=_pack)

    q = data.add_parser("unpack", help="a packed dataset back into a prepared dataset folder")
    q.add_argument("file", help="file written by 'free3d data pack'")
    q.add_argument("dataset", help="folder to create (must not exist, or be empty)")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=_unpack)

    q = sub.add_parser("demo", help="build the procedural dataset and render previews")
    q.add_argument("--out", default="free3d-demo")
    q.add_argument("--skeleton", default="bandai21")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=_demo)

    train = sub.add_parser("train", help="train a model stage").add_subparsers(
        dest="stage", required=True)
    stage_help = {
        "prior": "the frozen 2D motion prior (VQ-VAE; --prior-kind vae/ae for table 4)",
        "mlrq": "the Motion-Lifting RQ-VAE from 2D only (paper eq. 9 to 15)",
        "rvq3d": "the 3D-supervised baseline (MoMask's RVQ-VAE; --input-dim 2 lifts)",
    }
    for stage, text in stage_help.items():
        q = train.add_parser(stage, help=text)
        q.add_argument("--data", required=True, help="prepared dataset folder")
        q.add_argument("--out", required=True, help="run folder (re-run to resume)")
        q.add_argument("--preset", choices=("cpu", "paper"), default="cpu")
        q.add_argument("--width", type=int, help="channels of the conv encoder/decoder "
                       "(default: the preset's)")
        q.add_argument("--code-dim", type=int, help="code size of the quantizer (default: the preset's)")
        q.add_argument("--codebook-size", type=int,
                       help="codes per codebook (default: the preset's)")
        q.add_argument("--down", type=int, help="temporal downsampling layers, each halving "
                       "the frame rate (default: the preset's 2, so 4x)")
        q.add_argument("--dead-code-threshold", type=float,
                       help="a code whose EMA count (tokens per step) falls below this is reset "
                            "to a batch vector (default: the preset's; MoMask: 1)")
        q.add_argument("--iters", type=int, help="pretraining steps")
        q.add_argument("--finetune-iters", type=int, help="fine-tuning steps at the lower lr")
        q.add_argument("--batch-size", type=int)
        q.add_argument("--window", type=int,
                       help="frames per training window (a multiple of 2^down: 4 by default)")
        q.add_argument("--window-max", type=int,
                       help="train on windows of --window to this many frames, one length per "
                            "step, so that long clips lift as well as short ones (0 = off)")
        q.add_argument("--lr", type=float)
        q.add_argument("--beta", type=float, help="commitment weight")
        q.add_argument("--seed", type=int)
        q.add_argument("--checkpoint-every", type=int)
        q.add_argument("--init-from", help="start from the weights of this earlier run "
                       "(same stage and sizes) instead of at random")
        q.add_argument("--representation", choices=("limbs", "joints", "limbs-velocity"),
                       help="limbs: the paper's trajectory + limb vectors; joints: table 5's "
                            "joint coordinates; limbs-velocity (ours): the root as per-frame "
                            "displacement (free3d recipe's ML-RQ)")
        q.add_argument("--mirror-clips", action="store_true",
                       help="also train on every clip's mirror image (left and right swapped)")
        q.add_argument("--grad-clip", type=float, help="clip each step's gradient to this global "
                       "norm; 0 = off (default 0; the ML-RQ's free3d recipe: 1)")
        q.add_argument("--skip-spikes", type=float,
                       help="drop the gradient of a step whose loss is over this many times the "
                            "median of the last 64 steps; 0 = off (default 0; the ML-RQ's "
                            "free3d recipe: 5)")
        q.add_argument("--balance", type=float, metavar="B", help=BALANCE_HELP)
        if stage != "rvq3d":
            q.add_argument("--std-floor", type=float,
                           help="every input feature's std at least this fraction of the median "
                                "feature's (and L2D's units, for the ML-RQ); 0 = a 1e-3 floor. "
                                "Default 0.25 (the ML-RQ's paper recipe: 0)")
        _training_run_options(q)
        if stage == "prior":
            q.add_argument("--prior-kind", choices=("vq", "vae", "ae"))
        if stage == "mlrq":
            q.add_argument("--prior", help="run folder of the trained 2D prior")
            q.add_argument("--recipe", choices=("free3d", "paper"), default="free3d",
                           help="free3d (default): the paper's terms plus Lcycle (root fixed), "
                                "upright views, Lknee 10, Lbone 10, the root as velocity, gradient "
                                "clipping and spike skipping; paper: eq. 15 as published. "
                                "Single flags below override it")
            q.add_argument("--lambda-cycle", type=float,
                           help="weight of Lcycle, our addition: lift, turn to a random view, "
                                "project, lift again; the two lifts must agree (free3d: 1)")
            q.add_argument("--cycle-fixed-root", action=argparse.BooleanOptionalAction,
                           help="Lcycle does not move the first lift's root trajectory, only "
                                "the second lift learns from it (keeps the lifter's bias about "
                                "where bodies travel out of lifts the 2D contradicts; free3d "
                                "recipe: on; --no-cycle-fixed-root: the recipe before it)")
            q.add_argument("--lambda-floor", type=float,
                           help="weight of Lfloor, our addition: the lowest foot stays on a "
                                "level floor (default 0)")
            q.add_argument("--lambda-skate", type=float,
                           help="weight of Lskate, our addition: a planted foot does not slide, "
                                "so the root's depth follows the feet (default 0)")
            q.add_argument("--no-upright-views", action="store_true",
                           help="ablation: Lrec and Lcycle turn about the camera's vertical")
            q.add_argument("--no-rec", action="store_true", help="ablation: without Lrec")
            q.add_argument("--no-ori", action="store_true", help="ablation: without Lori")
            q.add_argument("--no-feat", action="store_true", help="ablation: without Lfeat")
            q.add_argument("--upright-views", action="store_true",
                           help="Lrec and Lcycle stand the predicted clip up before the random "
                                "turns (on in the free3d recipe)")
            for term, what in (("rec", "Lrec"), ("ori", "Lori"), ("feat", "Lfeat")):
                q.add_argument(f"--lambda-{term}", type=float,
                               help=f"weight of {what} in eq. 15 (default 1, as the paper)")
            q.add_argument("--lambda-bone", type=float,
                           help="weight of Lbone, our addition: limbs keep their length over "
                                "time (free3d recipe: 10; paper: 0)")
            q.add_argument("--lambda-knee", type=float,
                           help="weight of Lknee, our addition: knees bend only backwards "
                                "(free3d recipe: 10; paper: 0)")
            q.add_argument("--lambda-prop", type=float,
                           help="weight of Lprop, our addition: limbs have the skeleton's "
                                "lengths, in the torso-normalised units of the 2D (free3d "
                                "recipe: 10; paper: 0)")
            q.add_argument("--l2d-units", choices=("limb", "shared"),
                           help="L2D's limb units: each limb's own spread over the data "
                                "(limb) or one spread for all limbs, as eq. 10 and the rvq3d "
                                "loss (shared)")
            q.add_argument("--lambda-joints2d", type=float,
                           help="weight of L2D on root-relative joint positions, our addition "
                                "beside eq. 10's limb term: a hand's error counts as MPJPE "
                                "sees it (default 0, as the paper)")
            q.add_argument("--lambda-iso", type=float,
                           help="weight of Liso, our addition: over a batch, each limb's depth "
                                "varies as much as its image x, as for cameras at random "
                                "azimuths (default 0, as the paper)")
            q.add_argument("--feat-encoder", choices=("shared", "separate"),
                           help="separate: Lfeat with the prior's encoder (table 4)")
        if stage == "rvq3d":
            q.add_argument("--input-dim", type=int, choices=(2, 3),
                           help="3: MoMask's RVQ-VAE (3D in); 2: supervised 2D-to-3D lifting")
        q.set_defaults(func=_train)

    gen_help = {
        "masked": "the masked transformer (layer-0 tokens from text)",
        "residual": "the residual transformer (token layers 1..L-1)",
        "length": "the length estimator (text -> motion length)",
    }
    for stage, text in gen_help.items():
        q = train.add_parser(stage, help=text)
        q.add_argument("--data", required=True, help="prepared dataset folder")
        q.add_argument("--mlrq", required=True, help="run folder of the trained ML-RQ (its tokens)")
        q.add_argument("--out", required=True, help="run folder (re-run to resume)")
        q.add_argument("--preset", choices=("cpu", "paper"), default="cpu")
        q.add_argument("--iters", type=int)
        q.add_argument("--batch-size", type=int)
        q.add_argument("--lr", type=float)
        q.add_argument("--seed", type=int)
        q.add_argument("--checkpoint-every", type=int)
        q.add_argument("--text-encoder", help=TEXT_ENCODER_HELP)
        if stage != "length":
            q.add_argument("--token-view", choices=("canonical", "clip"),
                           help="the 2D the ML-RQ tokenises: each clip lifted and seen from one "
                                "fixed camera (canonical, default) or the clip's own view (clip: the paper)")
            q.add_argument("--balance", type=float, metavar="B", help=BALANCE_HELP)
            q.add_argument("--mirror", action="store_true",
                           help="also train on each clip's mirror image, its captions' left and "
                                "right swapped (HumanML3D's augmentation; off by default)")
        _training_run_options(q)
        q.set_defaults(func=_train_generator)

    q = train.add_parser("evaluator", help="the text-motion evaluator (on the 3D of the train split)")
    q.add_argument("--data", required=True, help="prepared dataset folder")
    q.add_argument("--out", required=True, help="run folder (re-run to resume)")
    q.add_argument("--iters", type=int)
    q.add_argument("--batch-size", type=int)
    q.add_argument("--lr", type=float)
    q.add_argument("--seed", type=int)
    q.add_argument("--text-encoder", help=TEXT_ENCODER_HELP)
    q.add_argument("--quiet", action="store_true")
    q.add_argument("--device", default="auto", help=DEVICE_HELP + "; weights are saved device-free")
    q.set_defaults(func=_train_evaluator)

    q = sub.add_parser("generate", help="text -> 3D motion with a trained (default: bundled) model")
    q.add_argument("text", nargs="*", help="prompt(s), e.g. \"a tired person walks forward\"")
    q.add_argument("--prompts", help="file of text#seconds lines (#NA: the model picks the length)")
    q.add_argument("--seconds", type=str, default=None,
                   help="length of each motion, 2 to 9.8 (default: the length estimator decides)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--num-samples", type=int, default=1, help="motions per prompt (seeds seed, seed+1, ...)")
    q.add_argument("--out", default="free3d-out", help="output folder")
    q.add_argument("--overwrite", action="store_true",
                   help="replace the outputs already in --out (default: refuse to touch them)")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.add_argument("--format", default="npy,gif",
                   help="comma-separated: npy, bvh (centimetres, for Blender), gif, mp4, png, html "
                        "(one generations.html holding every motion in a 3D viewer; opens offline)")
    q.add_argument("--model", default=None, help="model folder (default: the bundled cpu model)")
    q.add_argument("--no-foot-lock", action="store_true",
                   help="keep the model's own feet (default: planted feet are pinned to the floor)")
    q.add_argument("--no-ground", action="store_true",
                   help="keep the decoder's own vertical path, whose floor is its lowest frame's "
                        "(default: every frame stands on the floor; free3d.grounding)")
    q.add_argument("--guidance", type=float, help="masked transformer guidance scale (default 4)")
    q.add_argument("--residual-guidance", type=float, help="residual transformer guidance (default 5)")
    q.add_argument("--iterations", type=int, help="unmasking iterations (default 10)")
    q.add_argument("--temperature", type=float)
    q.add_argument("--top-k", type=float, help="fraction of logits filtered out (default 0.9)")
    q.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="auto: bfloat16 transformers only where a one-off measurement on this CPU "
                        "finds them faster (cached; free3d.precision), else fp32; fp32 gives the "
                        "same samples on every machine")
    add_device(q)
    q.set_defaults(func=_generate)

    q = sub.add_parser("edit", help="regenerate a time span of a motion (.npy joints) from new text")
    q.add_argument("input", help=".npy of (T, J, 3) joints, metres, Y up, 20 fps "
                                 "(what generate and lift write)")
    q.add_argument("--start", type=float, required=True, help="start of the span to regenerate (s)")
    q.add_argument("--end", type=float, required=True, help="end of the span (s)")
    q.add_argument("--text", required=True, help="what the span should show")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", default="free3d-edit", help="output folder")
    q.add_argument("--overwrite", action="store_true", help="replace earlier outputs in --out")
    q.add_argument("--format", default="npy,gif",
                   help="comma-separated: npy, bvh, gif, mp4, png, html")
    q.add_argument("--model", default=None, help="model folder (default: the bundled cpu model)")
    for name, kind, what in (("guidance", float, "masked transformer guidance scale (default 4)"),
                             ("residual-guidance", float, "residual transformer guidance (default 5)"),
                             ("iterations", int, "unmasking iterations (default 10)"),
                             ("temperature", float, None),
                             ("top-k", float, "fraction of logits filtered out (default 0.9)")):
        q.add_argument(f"--{name}", type=kind, help=what)
    q.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    add_device(q)
    q.set_defaults(func=_edit)

    q = sub.add_parser("lift", help="2D keypoints (COCO-17, OpenPose, MediaPipe, .npy) or a video "
                                    "-> 3D motion",
                       description="A person's 2D keypoints, or a video, lifted to 3D motion with the "
                                   "model's ML-RQ (docs/lift.md). A video (.mp4, .mov, .avi, .mkv, "
                                   ".webm, ...) goes through MediaPipe Pose first (model_complexity 1, "
                                   "its weights inside the wheel; needs pip install \"free3d[video]\"), "
                                   "which follows one person: with several in view it tracks the first "
                                   "it finds.")
    q.add_argument("input", help="keypoint JSON, OpenPose folder of per-frame JSON, .npy/.npz (T, J, 2|3), "
                                 "or a video")
    q.add_argument("--out", default="free3d-lift", help="output folder")
    q.add_argument("--format", default="npy,gif",
                   help="comma-separated: npy, bvh, gif, mp4, png, html (a 3D viewer; opens offline)")
    q.add_argument("--layout", choices=("coco17", "body25", "mediapipe33", "bandai21"),
                   help="keypoint layout (default: detected from the file)")
    q.add_argument("--person", type=int, default=None,
                   help="which person track, by total confidence (default 0: the most confident); "
                        "keypoint files only: in a video MediaPipe follows one person")
    q.add_argument("--fps", type=float, default=None,
                   help="input frame rate (default: what the file or video records, else 30); "
                        "resampled to 20")
    q.add_argument("--y-up", action="store_true",
                   help="the array's y axis points up (default: image coordinates, y down)")
    q.add_argument("--image-size", help="WIDTHxHEIGHT scaling MediaPipe's normalised coordinates")
    q.add_argument("--model", default=None, help="model folder (default: the bundled cpu model)")
    q.add_argument("--no-foot-lock", action="store_true",
                   help="keep the lifter's own feet (default: planted feet are pinned to the floor)")
    q.add_argument("--overwrite", action="store_true", help="replace earlier outputs in --out")
    q.set_defaults(func=_lift)

    q = sub.add_parser("serve", help="a local web app: prompts in, 3D motion out, in your browser "
                       "(needs pip install 'free3d[serve]')")
    q.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; the app has no login)")
    q.add_argument("--port", type=int, default=8000)
    q.add_argument("--model", default=None, help="model folder (default: the bundled cpu model)")
    q.add_argument("--out", default=None,
                   help="folder for the results (default: a new temporary folder)")
    q.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    q.add_argument("--max-upload-mb", type=float, default=8.0,
                   help="largest request body accepted, in MiB (default 8); larger ones get 413")
    q.add_argument("--queue", type=int, default=16,
                   help="requests that may wait for the model (default 16); more get 503")
    q.add_argument("--keep", type=int, default=500,
                   help="results of the newest KEEP requests are kept in --out (default 500)")
    add_device(q)
    q.set_defaults(func=_serve)

    q = sub.add_parser("model", help="model folders").add_subparsers(dest="model_command", required=True)
    q = q.add_parser("assemble", help="gather trained runs into one model folder for generate")
    for part in ("mlrq", "masked", "residual", "length"):
        q.add_argument(f"--{part}", required=True, help=f"run folder of the {part} stage")
    q.add_argument("--out", required=True)
    q.add_argument("--card", help="markdown model card to include")
    q.set_defaults(func=_assemble)

    ev = sub.add_parser("eval", help="evaluate models").add_subparsers(dest="what", required=True)
    q = ev.add_parser("lift", help="MPJPE / PA-MPJPE of 2D test clips lifted to 3D")
    q.add_argument("--data", required=True, help="prepared dataset folder")
    q.add_argument("--model", action="append", default=[], help="run folder (repeatable)")
    q.add_argument("--reference", action="append", default=[],
                   choices=("zero-depth", "mean-pose", "rigid-random-signs"),
                   help="trivial reference (repeatable): zero-depth, the "
                   "mean training pose, or --rigid-depth's rigid skeleton with random signs")
    q.add_argument("--split", default="test", choices=("train", "val", "test"))
    q.add_argument("--keep-2d", action="store_true",
                   help="also score each model's depth on the observed 2D (rows 'observed 2D + its depth')")
    q.add_argument("--rigid-depth", action="store_true",
                   help="also score the observed 2D with rigid-skeleton depth whose signs come "
                        "from each model (rows 'observed 2D + rigid depth, its signs')")
    q.add_argument("--mirror-average", action="store_true",
                   help="also score each model averaged with its lift of the mirrored clip "
                        "(rows '+ mirror average'; flip test-time augmentation)")
    q.add_argument("--json", help="also write the rows as JSON here")
    q.add_argument("--quiet", action="store_true")
    add_device(q, precision=False)
    q.set_defaults(func=_eval_lift)

    q = ev.add_parser("physics", help="grounding: root drift, planted-foot height, foot "
                      "skating, ground penetration, per content")
    q.add_argument("--data", required=True, help="prepared dataset folder (captions, lengths, labels)")
    q.add_argument("--real", action="store_true", help="a row for the real clips (the anchor)")
    q.add_argument("--model", action="append", default=[], metavar="LABEL=DIR",
                   help="a generator (DIR 'default': the bundled model), one motion per clip "
                        "from its caption at its length; repeatable")
    q.add_argument("--reconstruction", action="append", default=[], metavar="LABEL=DIR",
                   help="DIR's tokeniser lifting each clip's 2D view; repeatable")
    q.add_argument("--split", default="test", choices=("train", "val", "test"))
    q.add_argument("--max-clips", type=int, help="an evenly spread subset of this many clips")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    q.add_argument("--json", help="also write the table as JSON here")
    q.add_argument("--quiet", action="store_true")
    add_device(q)
    q.set_defaults(func=_eval_physics)

    for what, text in (("generation", "table 1: R-precision, FID, MM-Dist, diversity, multimodality, QM"),
                       ("ablations", "tables 3 to 5: the generation metrics and MPJPE per model")):
        q = ev.add_parser(what, help=text)
        q.add_argument("--data", required=True, help="prepared dataset folder")
        q.add_argument("--evaluator", default="default",
                       help="evaluator run folder (free3d train evaluator); default: the bundled one")
        q.add_argument("--model", action="append", default=[],
                       help="LABEL=DIR of a generator (DIR 'default': the bundled model); repeatable")
        q.add_argument("--reconstruction", action="append", default=[], metavar="LABEL=DIR",
                       help="also score DIR's tokeniser round trip of the real clips (ML-RQ: from "
                            "their 2D view; 3D RVQ-VAE: from 3D); repeatable")
        q.add_argument("--split", default="test", choices=("train", "val", "test"))
        q.add_argument("--repeats", type=int, default=20)
        q.add_argument("--mm-texts", type=int, default=100, help="captions used for MultiModality")
        q.add_argument("--mm-generations", type=int, default=30, help="motions per caption for MultiModality")
        q.add_argument("--pool", type=int, default=32, help="R-precision pool size (protocol: 32)")
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
        q.add_argument("--out", help="write OUT.md and OUT.json; run again with the same --out to resume")
        q.add_argument("--quiet", action="store_true")
        add_device(q)
        q.set_defaults(func=_eval_generation)

    q = sub.add_parser("skeletons", help="list registered skeletons")
    q.add_argument("-v", "--verbose", action="store_true")
    q.set_defaults(func=_skeletons)
    return p


def main(argv: list[str] | None = None) -> int:
    from .api import ModelError

    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "device", None) is not None:
            from .device import resolve_device

            resolve_device(args.device)  # a bad --device is one clear error before any work
        args.func(args)
    except (ValueError, KeyError, TypeError, FileNotFoundError, FileExistsError, FloatingPointError,
            ModelError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"free3d: error: {msg}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a folder without write permission: the file and why
        where = f"{e.filename}: " if e.filename else ""
        print(f"free3d: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    finally:
        if "torch.distributed" in sys.modules:  # leave a torchrun process group cleanly
            from .distributed import teardown

            teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
