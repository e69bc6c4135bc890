"""``python -m ean.download_weights resnet50 imagenet1k_v1``: downloads named ImageNet weights into torch's hub
cache, where ``model.pretrained: imagenet1k_v1`` finds them (``ean.models.pretrained``; nothing else
downloads). Exit status 1, with one line naming the address and where the file goes, when it cannot, or
naming the damaged file already there.
"""

from __future__ import annotations

import argparse
import sys

from ean.command_name import command_name


def main(argv: list[str] | None = None) -> int:
    from ean.models.pretrained import (
        NAMED_WEIGHTS,
        TORCHVISION_WEIGHTS,
        PretrainedWeightsError,
        download,
        hub_file,
        torchvision_weights,
    )

    parser = argparse.ArgumentParser(
        prog=command_name("python -m ean.download_weights"),
        description="Download named ImageNet weights into torch's hub cache, where model.pretrained=NAME finds them.",
        epilog="Example: python -m ean.download_weights resnet50 (the paper's backbone, imagenet1k_v1)",
    )
    parser.add_argument("backbone", choices=sorted(TORCHVISION_WEIGHTS), help="the backbone whose weights to fetch")
    parser.add_argument(
        "source",
        choices=NAMED_WEIGHTS,
        nargs="?",
        default="imagenet1k_v1",
        help="which of torchvision's weights (default: imagenet1k_v1)",
    )
    args = parser.parse_args(argv)
    try:
        print(download(args.backbone, args.source))
    except PretrainedWeightsError as err:  # a file there already, damaged: downloading again needs it gone
        print(f"error: {err}: delete it and run this command again", file=sys.stderr)
        return 1
    except OSError as err:  # no network (urllib's URLError is an OSError), a full disk, a cache not writable
        url = torchvision_weights(args.source, args.backbone).url
        print(
            f"error: cannot download {url} to {hub_file(args.source, args.backbone)} ({err}); on a machine without "
            "network, download it elsewhere and copy it there, or set model.pretrained=PATH",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
