"""Video data for training and evaluation: list files, frame sampling, clip transforms, the
map-style `VideoListDataset`, deterministic synthetic tasks, and a sampler whose order is a
pure function of (seed, epoch, position), so that a resumed or distributed run sees exactly
the clips an uninterrupted single-process run would.

    inti.data.lists      the list-file convention of Kinetics-400 / SSv2 tooling: `path label`
    inti.data.sampling   TSN segment sampling: a random offset per segment (train), centres (eval)
    inti.data.transforms resize of the short side, random crop and flip (train), centre crop (eval)
    inti.data.augment    frame-consistent training augmentation: resized crop, RandAugment, erasing
    inti.data.kinetics   list files from the public Kinetics annotation CSVs
    inti.data.datasets   VideoListDataset, SyntheticVideos, the epoch sampler, the loader
    inti.data.synthetic  the synthetic tasks, and writing them to disk as videos plus a list file
"""
