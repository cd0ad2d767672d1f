"""InTI in place on a practitioner's own ViT, one line per host library (as ToMe's ``tome.patch``)::

    import inti.patch
    inti.patch.timm(model, schedule=(3,))          # a timm VisionTransformer
    inti.patch.open_clip(model, schedule=(3,))     # open_clip's VisionTransformer, or a CLIP model's .visual
    inti.patch.transformers(model, schedule=(3,))  # CLIPVisionModel, CLIPVisionModelWithProjection, CLIPModel
    inti.patch.undo(model)                         # the original model again

The patched model is the user's own object: its weights, its optimizer, its checkpoints,
torch.compile and DDP keep working. It takes video (B, T, 3, H, W) and merges frames between its
own blocks with Φ and θ (spec/00-method.md §3), which it holds as ``merges``. One file per host
library (timm.py, open_clip.py, transformers.py), each marking where its blocks run with the
merges; common.py holds what they share, the one loop over a host's blocks with the merge point
(`common.run_blocks`) included. The host libraries are imported only when their patch is applied.
"""

from .common import undo
from .open_clip import patch as open_clip
from .timm import patch as timm
from .transformers import patch as transformers

__all__ = ["timm", "open_clip", "transformers", "undo"]
