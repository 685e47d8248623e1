"""Conv calculator rerun cost: a control change must cost arithmetic, not model building.

Measured in one run on the same machine, so the printed ratios compare like with like:

- a Stride change on the calculator page (Streamlit AppTest rerun) against a rerun of the Home page,
  which does no work at all — the ratio is the calculator's own cost per widget change;
- a layer-stack trace of VGG-16 on the meta device (what the page does, cached per table) against
  building a real torchvision VGG-16 once (what a naive page would do on every change).

    python benchmarks/calculator_rerun.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _timing import median_seconds

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def page_reruns(repeats: int) -> tuple[float, float]:
    from streamlit.testing.v1 import AppTest

    home = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    home.run()
    home_time = median_seconds(home.run, repeats)

    calc = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    calc.run()
    calc.switch_page("pages/conv_calculator.py")
    calc.run()
    stride = iter(range(1, 10_000))

    def change_stride() -> None:
        calc.number_input(key="conv-stride").set_value(1 + next(stride) % 3).run()
        assert not calc.exception

    return home_time, median_seconds(change_stride, repeats)


def stack_trace_vs_build(repeats: int) -> tuple[float, float]:
    import torch
    import torchvision

    from cnndash.stack import PRESETS, trace_stack

    preset = PRESETS["VGG-16 (3×224×224)"]
    trace_time = median_seconds(lambda: trace_stack(preset.layers, preset.input_shape), repeats)
    torch.manual_seed(0)
    build_time = median_seconds(torchvision.models.vgg16, max(1, repeats // 2))
    return trace_time, build_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    home, calc = page_reruns(args.repeats)
    print(f"Home page rerun            {home * 1000:8.1f} ms")
    print(f"Calculator stride change   {calc * 1000:8.1f} ms   ({calc / home:.1f}x a no-op page rerun)")
    trace, build = stack_trace_vs_build(args.repeats)
    print(f"VGG-16 trace on meta       {trace * 1000:8.1f} ms")
    print(f"VGG-16 real build          {build * 1000:8.1f} ms   (trace is {build / trace:.0f}x faster)")


if __name__ == "__main__":
    main()
