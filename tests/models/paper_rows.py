"""The model rows of the EAN paper's Tables 1 and 5-10: model-config deltas and the reported Params/FLOPs.

``params`` in millions and ``flops`` in G multiply-accumulates per clip, as printed in the paper (None
where the paper gives none). ``tolerance`` overrides the 2% target for rows the README explains.
"""

NO_SOI = {"regions": "none"}
NO_EAB = {"block": "none"}

PAPER_ROWS = [
    # Table 1 (GFLOPs only)
    ("T1 EAN8F(RGB)", {}, 36.0, 36.0),
    ("T1 EAN16F(RGB)", {"num_segments": 16}, None, 72.0),
    ("T1 EAN8F(RGB+LMC)", {"modality": "rgb_lmc"}, None, 37.0),
    ("T1 EAN16F(RGB+LMC)", {"modality": "rgb_lmc", "num_segments": 16}, None, 74.0),
    # Table 5
    ("T5 ResNet baseline", {**NO_EAB, **NO_SOI}, 24.0, 33.1),
    ("T5 ResNet+EABs", NO_SOI, 29.5, 35.3),
    ("T5 ResNet+SOI-Tr", NO_EAB, 30.3, 33.8),
    ("T5 ResNet+EABs+SOI-Tr", {}, 36.0, 36.1),
    # Table 6
    ("T6 EAB 1-2, SOI-Tr 3-5", {"block_stages": [1, 2], "region_stages": [3, 4, 5]}, 35.6, 35.8),
    ("T6 EAB 1-3, SOI-Tr 4-5", {"block_stages": [1, 2, 3], "region_stages": [4, 5]}, 34.8, 35.9),
    ("T6 EAB 1-4, SOI-Tr 5", {}, 36.0, 36.1),
    ("T6 EAB 1-5, no SOI-Tr", {"block_stages": [1, 2, 3, 4, 5], **NO_SOI}, 65.8, 36.2),
    # Table 7 (FLOPs only)
    ("T7 None", NO_SOI, None, 35.3),
    ("T7 Fixed", {"regions": "fixed"}, None, 35.8),
    ("T7 Faster RCNN", {"regions": "fasterrcnn"}, None, 71.3),
    ("T7 All", {"regions": "all"}, None, 36.4),
    ("T7 Our Det-Net", {}, None, 36.1),
    # Table 8
    ("T8 Only SOI-Tr", NO_EAB, 30.3, 33.8),
    ("T8 +S-Block", {"block": "s_block"}, 30.9, 36.1),
    ("T8 +L-Block", {"block": "l_block"}, 30.9, 36.1),
    ("T8 +Incep-Block", {"block": "incep_block"}, 30.9, 36.0),
    ("T8 +EAB", {}, 36.0, 36.1),
    # Table 9
    ("T9 Identity (Incep-Block)", {"fusion": "identity"}, 30.9, 36.0),
    ("T9 Channel Shuffle", {"fusion": "shuffle"}, 30.9, 35.9),
    ("T9 Static Matrix", {"fusion": "static"}, 30.9, 36.0),
    ("T9 Dynamic Matrix", {}, 36.0, 36.1),
    # Table 10
    ("T10 Without Max Pool", {"block_options": {"pool": "none"}}, 36.0, 36.1),
    ("T10 Avg Pool", {"block_options": {"pool": "avg"}}, 36.0, 36.1),
    ("T10 Without inter ReLU", {"block_options": {"inter_relu": False}}, 36.0, 36.1),
    ("T10 Without dilation", {"block_options": {"dilation": False}}, 37.2, 37.5),
    ("T10 (1+1+1)D", {"block_options": {"factorization": "1+1+1"}}, 35.7, 35.7),
    ("T10 Ours", {}, 36.0, 36.1),
]

# Rows where 2% cannot hold, with the reason the README gives (see README, "Params and FLOPs").
KNOWN_DEVIATIONS = {
    "T7 Faster RCNN": (
        0.75,
        "torchvision's fasterrcnn_resnet50_fpn at 224 px costs 10.8 GMACs a frame (its FPN and RPN head alone "
        "5.3 G); the paper's figure implies a 4.4 G-a-frame detector, which it does not name",
    ),
    "T7 All": (
        0.03,
        "we count the attention products of the 392 tokens (0.32 G), which the authors' counter ignores; "
        "without them the row is at +1.5%",
    ),
    "T10 Without dilation": (
        0.03,
        "real 5x5 and 5 kernels add 0.18M / 0.67G here; the paper reports +1.2M / +1.4G, more than the "
        "kernels can add (its other rows match within 2%)",
    ),
}
