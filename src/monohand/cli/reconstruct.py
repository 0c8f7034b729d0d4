"""The main job's verbs: ``reconstruct`` (photos, folders, videos and frame sequences) and
``serve`` (the same on a local web page)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from . import usage
from .common import (
    app,
    console,
    err,
    examples,
    fit_config,
    method_options,
    model_options,
    say,
)


@app.command(epilog=examples(
    "monohand reconstruct photo.jpg --out out/photo",
    "monohand reconstruct photos/ --K 1400,1400,960,540 --formats .glb,.obj --out out/all",
    "monohand reconstruct clip.mp4 --out out/clip",
    "monohand reconstruct photo.jpg --method fit --out out/fit",
))
def reconstruct(
    inputs: list[Path] = typer.Argument(..., help="Images, folders, or videos (frames in order)."),
    out: Path = typer.Option(Path("out/reconstruct"), "--out", help="Output folder (made if "
                             "absent). A rerun replaces what monohand wrote there for the same "
                             "photo, nothing else (see --overwrite)."),
    method: str = typer.Option("auto", help="hybrid (the network's hands, then fitted) | fit "
                               "(optimisation only) | network (the network alone; the shipped one "
                               "or --checkpoint) | auto (hybrid for OpenHand or with --checkpoint, "
                               "else fit)."),
    checkpoint: Path | None = typer.Option(
        None, help="Network checkpoint (methods network and hybrid; default: the shipped one)."),
    K: str | None = typer.Option(None, "--K", help="fx,fy,cx,cy (pixels; commas or spaces) "
                                 "or a JSON file with K. Default: from the photo's EXIF focal "
                                 "length, else a 55-degree horizontal field of view."),
    model: str = typer.Option("openhand", help="Hand model: openhand, mano or nimble (right "
                              "hands only; or boxhand, the test model made in code)."),
    model_path: Path | None = typer.Option(None, help="MANO file/folder, NIMBLE folder/.npz/.pt, "
                                           "or another OpenHand build's .npz (fitted: the "
                                           "shipped network knows the shipped one only)."),
    formats: str = typer.Option(".glb", help="Mesh formats, comma-separated: any of .glb "
                                "(textured), .gltf, .obj, .ply, .off, .stl. glTF (.glb, .gltf) "
                                "is y-up as viewers expect (camera x, -y, -z: the photo's "
                                "view); the others are in the photo's camera frame (OpenCV: x "
                                "right, y down, z forward, metres), as the JSON."),
    max_hands: int = typer.Option(4, min=1, help="Hands per image (at least 1)."),
    together: bool = typer.Option(
        True, "--together/--one-by-one", help="Methods fit and hybrid, photos and each "
        "video frame: hands whose keypoint boxes overlap (or whose fits cross) are refined as "
        "one touching pair (in contact, not entering each other; a left and a right hand "
        "share one shape); --one-by-one fits each hand alone, e.g. for two people's hands "
        "that overlap in the photo without touching."),
    search_windows: bool = typer.Option(
        True, "--search-windows/--no-search-windows", help="Where MediaPipe finds no hand, look "
        "again with its landmark network over windows of the photo (seconds per such photo)."),
    sequence: bool = typer.Option(
        False, "--sequence", help="Treat the images (e.g. a folder of frames) as one video."
    ),
    fps: float = typer.Option(30.0, help="Frame rate of --sequence frames (videos carry theirs)."),
    smooth: bool = typer.Option(True, "--smooth/--no-smooth", help="Video: One-Euro smoothing."),
    warm_start: bool = typer.Option(
        True, "--warm-start/--no-warm-start", help="Video: a tracked hand's frame continues its "
        "track (hybrid: its own network start, the track's shape, texture and light kept; fit: "
        "from the previous frame's fit) instead of a cold start."),
    rig: bool = typer.Option(
        False, "--rig", help="Photos: each .glb carries the hand's skeleton (the model's 16 "
        "joints, posing the hand as fitted) for animation tools such as Blender; 4 joints per "
        "vertex, as every glTF viewer reads them."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the results of another photo (or video) of the "
        "same name in --out (an earlier run's IMG_0001.jpg from another folder); without it "
        "such a photo is skipped. Files monohand did not write are never replaced."),
    fit_steps: int | None = typer.Option(
        None, help="Optimiser steps per hand before the silhouette stage's 10: more is slower "
        "(default: 30 for hybrid, 80 for fit, whose first 40 match 3D landmarks; network: "
        "no fit)."
    ),
    keypoints: Path | None = typer.Option(
        None, "--keypoints", help="Photos: the hands' 2D keypoints from OpenPose (its "
        "--write_json output, pixels) in MediaPipe's place: a JSON file for one photo, or the "
        "folder of <stem>_keypoints.json files. No world landmarks: the fit reads depth from "
        "the keypoints alone."),
) -> None:
    """Reconstruct 3D hands from photos: <stem>_<i>.glb (textured), <stem>.json (joints, vertices,
    K, parameters, confidences, fit loss) and <stem>_overlay.png for every input. A video (or
    --sequence) gives per-frame <stem>_<k>.json and .glb files (k from 00000),
    <stem>_overlay.mp4 and <stem>_tracks.json, with hands tracked, shape shared, fits
    warm-started and pose smoothed."""
    from ..data.detection import check_detections
    from ..data.detection_file import (
        MIN_FOUND_JOINTS,
        load_openpose_hands,
        openpose_file_for,
    )
    from ..data.images import (
        ImageError,
        collect_images,
        earlier_output,
        expand_patterns,
        frame_count,
        hidden,
        read_rgb,
        sequence_frames,
    )
    from ..data.intrinsics import parse_K
    from ..export import MESH_SUFFIXES, normalise_formats
    from ..notes import small_photo
    from ..outputs import OutputClash, output_stems
    from ..progress import track
    from ..reconstruct import (
        METHODS,
        ReconstructConfig,
        Reconstructor,
        reconstruct_photo,
        resolve_method,
    )
    from ..video.frames import DEFAULT_FPS, is_video

    # Usage errors are answered before any model is loaded or any photo is read.
    usage.out_folder(out)
    mesh_formats = normalise_formats(formats.split(","))
    bad = [f for f in mesh_formats if f not in MESH_SUFFIXES]
    if bad or not mesh_formats:
        raise typer.BadParameter(f"{', '.join(bad) or formats!r} not supported: any of "
                                 f"{', '.join(MESH_SUFFIXES)}", param_hint="--formats")  # fmt: skip
    model = model_options(model, model_path)
    usage.one_of(method, ("auto", *METHODS), "--method")
    if not fps > 0:  # NaN too
        raise typer.BadParameter(f"{fps:g}: frames per second must be above 0",
                                 param_hint="--fps")  # fmt: skip
    if checkpoint is not None:
        usage.existing(checkpoint, "--checkpoint", "checkpoint")
    method = resolve_method(ReconstructConfig(model=model, method=method,
                                              checkpoint=str(checkpoint) if checkpoint else None,
                                              model_path=str(model_path) if model_path
                                              else None))  # fmt: skip
    method_options(method, checkpoint, fit_steps)
    try:
        K_user = parse_K(K) if K else None
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--K") from e
    try:
        inputs = expand_patterns(inputs)  # a pattern the shell left as it is
        # a missing video is named by ``collect_images``, as a missing photo, before any work
        videos = [p for p in inputs if is_video(p) and p.exists()]
        rest = [p for p in inputs if p not in videos]
        images = sequence_frames(rest) if sequence else collect_images(rest)
        # a folder's videos are not read (each is a sequence of its own): said, not dropped
        unread = sorted(f for p in rest if Path(p).is_dir()
                        for f in (Path(p).iterdir() if sequence else Path(p).rglob("*"))
                        if is_video(f) and f.is_file() and not hidden(f, Path(p))
                        and not earlier_output(f))  # fmt: skip
    except (ValueError, ImageError, OSError) as e:
        say("error", e)
        raise typer.Exit(2) from e
    why = ""
    if unread:
        named = (f"{unread[0]} and {len(unread) - 1} more: videos in a folder are not read"
                 if len(unread) > 1 else f"{unread[0]}: a video in a folder is not read")
        why = f"{named}; name one itself to reconstruct it (monohand reconstruct {unread[0]})"
        if images or videos:
            say("note", why)
    if keypoints is not None and (videos or sequence):
        raise typer.BadParameter("for photos only (a video's frames are detected, tracked and "
                                 "followed by MediaPipe)", param_hint="--keypoints")  # fmt: skip
    if keypoints is not None and not keypoints.exists():
        raise typer.BadParameter(f"{keypoints}: no such file or folder", param_hint="--keypoints")
    if images and not videos and not sequence and (not smooth or not warm_start):
        given = [o for o, off in (("--no-smooth", not smooth), ("--no-warm-start", not warm_start))
                 if off]  # fmt: skip
        say("note", f"{', '.join(given)}: for videos and --sequence only; not used for photos")
    if rig and (".glb" not in mesh_formats or not images or sequence or model == "nimble"):
        why = "NIMBLE's layer has no skinning rig in monohand" if model == "nimble" else (
            "for photos' .glb files")  # fmt: skip
        say("note", f"--rig: {why}; not used here")
    if not together and method == "network":
        say("note", "--one-by-one: for the fit and hybrid methods only (the network fits "
                    "nothing: each hand is its own prediction); not used here")  # fmt: skip
    if fps != DEFAULT_FPS and not sequence and (images or videos):
        say("note", "--fps: for --sequence frames only (a video carries its own frame rate); "
                    "not used here")  # fmt: skip
    if not images and not videos:
        deeper = sequence and any(Path(p).is_dir() and collect_images([p]) for p in inputs)
        say("error", f"no image found in {', '.join(map(str, inputs))}" + (
            f" ({why})" if why else "" if deeper else " (nor a video)") + (
            " (--sequence reads a folder's own frames, not its subfolders': give the "
            "subfolder)" if deeper else ""))  # fmt: skip
        raise typer.Exit(2)
    from collections import Counter

    # A run that writes nothing leaves no empty folders of its own (out and the parents it made).
    made = [d for d in (out, *out.parents) if not d.exists()]
    openpose = {}  # photo -> its OpenPose file (--keypoints)
    if keypoints is not None:
        openpose = {p: openpose_file_for(p, keypoints) for p in images}
        if images and Path(keypoints).is_dir() and not any(f.is_file() for f in openpose.values()):
            held = sorted(f.name for f in Path(keypoints).glob("*.json"))
            raise typer.BadParameter(
                f"{keypoints} holds no <stem>_keypoints.json for any of the {len(images)} "
                f"photo(s) (e.g. {openpose[images[0]].name}; OpenPose's --write_json names "
                f"them so)" + (f"; its .json files: {', '.join(held[:3])}"
                               + (", ..." if len(held) > 3 else "") if held else ""),
                param_hint="--keypoints")  # fmt: skip
        for p, f in openpose.items():
            if f == Path(keypoints) and f.stem.removesuffix("_keypoints") != p.stem:
                say("note", f"{f} is not named for {p} ({p.stem}_keypoints.json): its hands "
                            f"are taken as the photo's")  # fmt: skip
        shared = [f for f, n in Counter(openpose.values()).items() if n > 1]
        if shared:
            given = [str(p) for p, f in openpose.items() if f == shared[0]]
            raise typer.BadParameter(f"{shared[0]} would give its hands to {len(given)} photos "
                                     f"({', '.join(given[:3])}): one OpenPose file per photo "
                                     f"(a folder of <stem>_keypoints.json for several)",
                                     param_hint="--keypoints")  # fmt: skip
    try:
        rec = Reconstructor(
            ReconstructConfig(
                model=model,
                method=method,
                checkpoint=str(checkpoint) if checkpoint else None,
                max_hands=max_hands,
                search_windows=search_windows and keypoints is None,
                together=together,
                model_path=str(model_path) if model_path else None,
                **{"hybrid_fit" if method == "hybrid" else "fit": fit_config(fit_steps, method)},
            ),
            # OpenPose's hands are given photo by photo: MediaPipe is not loaded
            **({"detector": _NoDetector()} if keypoints is not None else {}),
        )
    except (ValueError, OSError) as e:
        say("error", e)
        raise typer.Exit(2) from e
    # per input: "done", "no hand" or "skipped" ("unreadable" too, when it could not be read)
    outcomes: Counter[str] = Counter()
    hands = 0
    with rec:
        if sequence and images:
            videos.append(images)  # one sequence of frames
            images = []
        if videos and len(rec.sides) < 2:
            say("note", f"{rec.sides_only}: a video's other hands are not "
                        f"reconstructed")  # fmt: skip
        # one name per input, photos and videos alike (two clip.mp4 in one run, or clip.mp4
        # and clip.mov, would write each other's frames)
        wholes = [v[0].parent if isinstance(v, list) else v for v in videos]
        stems = output_stems(images + wholes)
        for p in track(images, description="reconstructing", console=err):
            try:
                image = read_rgb(p)
                given = None
                if keypoints is not None:
                    left_out: list[str] = []
                    try:
                        given = load_openpose_hands(openpose[p], left_out)
                    except ValueError as e:  # (it names the file, not the photo it is for)
                        raise ValueError(f"{e} (--keypoints for {p})") from e
                    try:
                        given = check_detections(given, image.shape[:2])
                    except ValueError as e:  # (a file of another photo, or of another size)
                        raise ValueError(f"{openpose[p]}: {e} (--keypoints for {p})") from e
                res = reconstruct_photo(rec, image, out, stems[p], str(p), K_user, p,
                                        mesh_formats, overwrite=overwrite, rig=rig,
                                        detections=given,
                                        keypoints_file=None if keypoints is None
                                        else str(openpose[p]))  # fmt: skip
                _warn_if_K_doubtful((res.K, res.K_source), image, p)  # the K it used
                if (frames := frame_count(p)) > 1:
                    say("note", f"{p}: an image of {frames} frames, read as a photo: its first "
                                f"only (as a video, e.g. ffmpeg -i {p.name} {p.stem}.mp4, "
                                "every frame is)")  # fmt: skip
                gone = (f" (an earlier run's {len(res.removed)} file(s) of {stems[p]}.* "
                        "removed)" if res.removed else "")  # fmt: skip
                lacking = _unsupported_words(res.unsupported, rec)
                if not res.hands:
                    if lacking:
                        say("no hand reconstructed", f"{p}: {lacking}{gone}")
                        outcomes["other side"] += 1
                    elif keypoints is not None:
                        why = ("; ".join(left_out[:3]) + (", ..." if len(left_out) > 3 else "")
                               if left_out else "no hand found by OpenPose")  # fmt: skip
                        say("no hand found", f"{p}: none in {openpose[p]} ({why}; a hand needs "
                                             f"its wrist, middle knuckle and {MIN_FOUND_JOINTS} "
                                             f"joints found){gone}")  # fmt: skip
                        outcomes["no hand"] += 1
                    else:
                        say("no hand found", f"{p}{small_photo(image.shape)}{gone}")
                        outcomes["no hand"] += 1
                        outcomes["missed"] += 1  # (a photo MediaPipe missed: --keypoints helps)
                    continue
                if lacking:
                    say("note", f"{p}: {lacking}")
                outcomes["done"] += 1
                hands += len(res.hands)
                console.print(f"{p}: {len(res.hands)} hand(s) by {_by(rec)}, "
                              f"{_K_words(res.K_source)} -> {out}/{stems[p]}.*{gone}")
                _say_notes(p, res.hands, method)
            except (ImageError, ValueError, OSError) as e:
                # (an OSError: a file monohand could not replace, e.g. one a viewer holds open)
                say("skipped", e if isinstance(e, ValueError) else f"{p}: {e}")
                outcomes["skipped"] += 1
                outcomes["unreadable"] += isinstance(e, ImageError)
                outcomes["in the way"] += isinstance(e, OutputClash)
        taken = {n.casefold() for n in stems.values()}
        for v, whole in zip(videos, wholes, strict=True):
            stem = stems[whole]
            # (a folder of frames keeps its whole name, clip.v2, where no other input's is it)
            if (isinstance(v, list) and stem == whole.stem and whole.name != stem
                    and whole.name.casefold() not in taken):  # fmt: skip
                stem = whole.name
            outcome = _reconstruct_video(rec, v, out, K_user, fps, smooth, warm_start,
                                         mesh_formats, overwrite, stem)  # fmt: skip
            outcomes[outcome] += 1
            outcomes["skipped"] += outcome == "in the way"
            outcomes["unreadable"] += outcome == "skipped"  # a video is skipped unread
    if outcomes["missed"]:
        searched = " and the window search" if rec.cfg.search_windows else ""
        say("note", f"no hand found in {outcomes['missed']} photo(s) by MediaPipe{searched}: "
                    f"hands that grip an object (an instrument, a tool), gloved "
                    f"or interlocked hands are often missed; --keypoints FILE_OR_FOLDER takes "
                    f"the hands of a detector of one's own (OpenPose's JSON)")  # fmt: skip
    done = outcomes["done"]
    if len(images) + len(videos) > 1 or not done:
        parts = [f"{done} of {len(images) + len(videos)} input(s) reconstructed"
                 + (f" ({hands} hand(s) in photos)" if images else "")]
        if outcomes["no hand"]:
            parts.append(f"no hand found in {outcomes['no hand']}")
        if outcomes["other side"]:
            parts.append(f"only hands {rec.cfg.model} lacks in {outcomes['other side']}")
        if outcomes["skipped"]:
            parts.append(f"{outcomes['skipped']} skipped")
        (console if done else err).print("; ".join(parts) + (f"; files in {out}" if done else ""))
    if done == 0:
        for d in made:  # (deepest first; a folder that holds anything stays, and its parents)
            if not d.is_dir() or any(d.iterdir()):
                break
            d.rmdir()
        inputs_n = len(images) + len(videos)
        why = ("no input could be read" if outcomes["unreadable"] == inputs_n else
               f"nothing written: files in the way in {out} (see above)"
               if outcomes["in the way"] == inputs_n else "no hand could be reconstructed")
        say("error", why)
        raise typer.Exit(1)


def _say_notes(name, hands, method: str) -> None:
    """What ``notes.hand_notes`` finds worth saying of a photo's hands, each naming it."""
    from ..notes import hand_notes

    for kind, text in hand_notes(hands, method):
        if kind == "note":
            console.print(f"{escape(str(name))}: {text}", highlight=False)
        else:
            say(kind, f"{name}: {text}")


class _NoDetector:
    """The detector of a run whose hands are given (``--keypoints``): never asked."""

    def detect(self, image, windows=None) -> list:
        return []


def _unsupported_words(found: list, rec) -> str:
    """What to say of hands found of a side the model lacks ('' for none)."""
    if not found:
        return ""
    sides = " and ".join(sorted({d.side for d in found}))
    return (f"{len(found)} {sides} hand(s) found, not reconstructed: {rec.sides_only} "
            f"(--model openhand or mano makes both)")


def _by(rec) -> str:
    """The method as said per input, with one's own checkpoint named ("hybrid (checkpoint
    out/run/last.ckpt)"); the shipped network goes unnamed."""
    net = rec.network_name
    return rec.cfg.method + (f" (checkpoint {escape(net)})" if net not in (None, "shipped")
                             else "")  # fmt: skip


def _warn_if_K_doubtful(camera: tuple, image, name) -> None:
    """Warn (stderr) when the K of ``camera`` (K, its source), given or from EXIF, looks
    meant for another image than ``image`` (the library's own warning of it is silenced by
    ``main``: this one names the input and where K came from)."""
    from ..data.intrinsics import camera_doubt

    K, source = camera
    if warn := camera_doubt(K, image.shape[:2]):
        say("warning", f"{name} ({_K_words(source)}): {warn}")


def _K_words(source: str, video: bool = False) -> str:
    """Where a photo's (or a ``video``'s) K came from, as the command says it."""
    from ..render.camera import DEFAULT_FOV_DEG

    why = ("a video's focal length is not read" if video else "no focal length in its EXIF")
    return {"given": "K from --K", "exif": "K from the photo's EXIF focal length",
            "default": f"K from a {DEFAULT_FOV_DEG:g}-degree horizontal field of view "
                       f"({why}; --K sets it)"
            }.get(source, f"K from {source}")  # fmt: skip


def _reconstruct_video(rec, source, out: Path, K_user, fps: float, smooth: bool,
                       warm_start: bool, mesh_formats, overwrite: bool = False,
                       stem: str | None = None) -> str:  # fmt: skip
    """A video file, or a list of frame files (--sequence), written as ``stem`` (by default
    the file's stem, the folder's name): "done", "no hand" (no frame with a hand: nothing
    left written), "skipped" (unreadable) or "in the way" (files in --out that it must not
    replace)."""
    from itertools import chain

    from ..data.images import ImageError, read_rgb
    from ..data.intrinsics import camera_for_image
    from ..outputs import OutputClash
    from ..progress import Reporter
    from ..video.frames import ReadableFrames, read_frames, video_fps
    from ..video.sequence import SequenceConfig, SequenceReconstructor, write_sequence

    files = isinstance(source, list)
    stem = stem or (source[0].parent.name if files else source.stem)
    name = (f"{source[0].parent}/ ({len(source)} frame{'s' * (len(source) != 1)})" if files
            else str(source))
    times: list[float] = []  # a video's frames' times, as they are read
    try:
        if files:
            frames, total, first_path = (read_rgb(p) for p in source), len(source), source[0]
        else:
            fps, frames, total, first_path = (video_fps(source), read_frames(source, times),
                                              None, None)  # fmt: skip
        first = next(frames)
        # A later frame that cannot be read (a truncated video) ends the sequence there:
        # the frames before it are finished and said so, not thrown away.
        rest = ReadableFrames(chain([first], frames))
        K, k_source = camera_for_image(first_path, first.shape[:2], K_user)
        _warn_if_K_doubtful((K, k_source), first, name)
        cfg = SequenceConfig(warm_start=warm_start)
        cfg.smoothing.enabled = smooth
        seq = SequenceReconstructor(rec, cfg, fps)
        with Reporter(f"{stem}", total, err) as bar:
            summary = write_sequence(seq, rest, K, out, stem, fps, mesh_formats,
                                     progress=bar.advance, k_source=k_source,
                                     source=str(source[0].parent if files else source),
                                     frame_names=[str(p) for p in source] if files else None,
                                     overwrite=overwrite,
                                     times=None if files else times)  # fmt: skip
    except (ImageError, ValueError, StopIteration) as e:
        why = str(e) or "no frames"
        named = why.startswith(str(source[0] if files else source))  # the reader named it
        say("skipped", why if named else f"{name}: {why}")
        return "in the way" if isinstance(e, OutputClash) else "skipped"
    if rest.stopped:
        last = f" ({stem}_00000 to {stem}_{summary.frames - 1:05d})" if summary.frames else ""
        why = rest.stopped
        if files and rest.stopped_at is not None and str(source[rest.stopped_at]) not in why:
            why = f"{why}: {source[rest.stopped_at]}"  # the file, where the reader did not say
        say("warning", f"{name}: stopped ({why}); the {summary.frames} frame(s) "
             f"before it were reconstructed{last}")  # fmt: skip
    gone = (f" (an earlier run's {len(summary.removed)} file(s) of {stem}_* removed)"
            if summary.removed else "")  # fmt: skip
    if summary.frames_with_hands == 0:
        # as a photo without a hand: nothing written (its records would all be empty)
        for p in summary.paths:
            Path(p).unlink(missing_ok=True)
        which = ("" if len(rec.sides) == 2 else
                 f" (no {' or '.join(rec.sides)} hand: {rec.cfg.model} has no other)")  # fmt: skip
        say("no hand found", f"{name}: in none of its {summary.frames} frame(s){which}; "
                             f"nothing written{gone}")  # fmt: skip
        return "no hand"
    console.print(
        f"{name}: {summary.frames_with_hands}/{summary.frames} frames with hands by "
        f"{_by(rec)}, {summary.frames / summary.seconds:.2f} frames/s, "
        f"{_K_words(k_source, video=not files)} -> {out}/{stem}_overlay.mp4{gone}"
    )
    from ..notes import video_notes

    for kind, text in video_notes(summary.frames, summary.together, summary.crossing,
                                  summary.side_runs):  # fmt: skip
        say(kind, f"{name}: {text}")
    return "done"


@app.command(epilog=examples(
    "monohand serve",
    "monohand serve --port 8080",
))
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (the default: this computer "
                             "only; 0.0.0.0: every network)."),
    port: int = typer.Option(7860, min=1, max=65535, help="Port."),
    model_path: Path | None = typer.Option(None, help="MANO or NIMBLE files: offers those models."),
    checkpoint: Path | None = typer.Option(None, help="A training checkpoint: offers 'network'."),
    example: Path | None = typer.Option(None, help="Image behind 'Try the example'."),
    max_upload_mb: float = typer.Option(20.0, min=0.01, help="Largest upload accepted, MB."),
) -> None:
    """A local web page: drop a photo, turn the 3D hand around, download .glb and .json."""
    import uvicorn

    from ..serve.app import ServeConfig, create_app, default_example

    for path, option, kind in ((model_path, "--model-path", "file or folder"),
                               (checkpoint, "--checkpoint", "checkpoint"),
                               (example, "--example", "file")):  # fmt: skip
        if path is not None:
            usage.existing(path, option, kind)
    cfg = ServeConfig(
        model_path=str(model_path) if model_path else None,
        checkpoint=str(checkpoint) if checkpoint else None,
        example=str(example) if example else default_example(),
        max_upload_mb=max_upload_mb,
    )
    import socket

    try:  # bound here, so that a busy port is said before "serving" is
        sock = socket.create_server((host, port))
    except OSError as e:
        raise typer.BadParameter(f"cannot listen on {host}:{port} ({e.strerror or e})",
                                 param_hint="--host/--port") from None  # fmt: skip
    with sock:
        console.print(f"monohand serving on http://{host}:{port}/  (Ctrl-C stops)")
        uvicorn.run(create_app(cfg), fd=sock.fileno(), log_level="warning")
