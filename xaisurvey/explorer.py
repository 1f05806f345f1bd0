"""The explorer: every registered method's maps for a set of photos, on a page that
needs no kernel.

:func:`~xaisurvey.explorer.compute_explorer` runs each method of the registry on a few
real photos, for the model's top classes and for several layers (layer methods only),
and stores each map normalised to [0, 1], average-pooled to ``map_size`` x ``map_size``
and quantised to 8 bits. :func:`~xaisurvey.explorer.explorer_html` turns the result into
one self-contained HTML fragment (the photos as JPEG data URIs, the maps as base64
bytes, a colour table and a few lines of JavaScript; no CDN, no kernel), in which a
reader picks a photo, a method, a class and a layer and sees the map over the photo.
:func:`~xaisurvey.explorer.explorer_grid` draws the same maps as a static figure for
print.
"""

from __future__ import annotations

import base64
import html
import io
import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .attribution import registry
from .plot import normalise_map

__all__ = [
    "ExplorerData",
    "compute_explorer",
    "explorer_html",
    "explorer_grid",
    "colour_table",
]


@dataclass
class ExplorerData:
    """Precomputed maps. ``maps[key]`` is a (map_size, map_size) uint8 array, ``key`` =
    ``photo|method|class|layer`` (``layer`` is ``"-"`` for methods without one);
    ``errors[photo|method|layer]`` holds the one-line error of a method that cannot
    explain this model."""

    # name -> (H, W, 3) uint8
    photos: dict[str, np.ndarray] = field(default_factory=dict)
    # photo -> (index, name, p)
    classes: dict[str, list[tuple[int, str, float]]] = field(default_factory=dict)
    methods: list[str] = field(default_factory=list)
    # method -> layers ("-" for none)
    layers: dict[str, list[str]] = field(default_factory=dict)
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    map_size: int = 56

    @staticmethod
    def key(photo: str, method: str, cls: int, layer: str) -> str:
        return f"{photo}|{method}|{cls}|{layer}"


def _quantise(maps: torch.Tensor, size: int) -> np.ndarray:
    """(N, H, W) maps -> (N, size, size) uint8: each map scaled to [0, 1], then averaged
    into cells."""
    scaled = torch.stack([normalise_map(m.detach().float().cpu()) for m in maps])
    pooled = F.adaptive_avg_pool2d(scaled.unsqueeze(1), size)[:, 0]
    return (pooled.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def compute_explorer(
    model: torch.nn.Module,
    images: dict[str, torch.Tensor],
    class_names: Sequence[str],
    *,
    methods: Sequence[str] | None = None,
    layers: Sequence[str] = ("stage3",),
    top_classes: int = 2,
    map_size: int = 56,
) -> ExplorerData:
    """Maps of every method (default: all registered) for each photo and its
    ``top_classes`` classes.

    Args:
        model: the classifier (images in [0, 1]).
        images: name -> preprocessed (3, H, W) photo, all the same size.
        class_names: the model's class names.
        methods: registry names; default every registered method.
        layers: dotted layer names tried for methods that need a layer.
        top_classes: how many of each photo's top-scoring classes can be chosen.
        map_size: side of the stored maps (they are shown smoothed over the photo).

    Each method runs with its ``evaluation`` options (else its ``defaults``). A method
    that raises is recorded with its message, never skipped silently.
    """
    if not images:
        raise ValueError("compute_explorer: images must name at least one photo")
    if not isinstance(top_classes, int) or top_classes < 1:
        raise ValueError(
            f"compute_explorer: top_classes must be an int >= 1, got {top_classes!r}"
        )
    names = list(images)
    x = torch.stack([images[n] for n in names])
    with torch.no_grad():
        probs = model.eval()(x).softmax(dim=1)
    top = probs.topk(top_classes, dim=1)
    data = ExplorerData(map_size=map_size)
    for i, name in enumerate(names):
        data.photos[name] = (
            (x[i].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
        )
        data.classes[name] = [
            (int(c), class_names[int(c)], float(p))
            for p, c in zip(top.values[i], top.indices[i])
        ]
    specs = (
        [registry.get(m) for m in methods]
        if methods is not None
        else registry.available()
    )
    # One batch per method and layer: every photo repeated once per class, image-major.
    batch = x.repeat_interleave(top_classes, dim=0)
    targets = top.indices.reshape(-1).tolist()
    for spec in specs:
        data.methods.append(spec.name)
        spec_layers = list(layers) if spec.needs_layer else ["-"]
        data.layers[spec.name] = spec_layers
        options = dict(spec.evaluation or spec.defaults)
        for layer in spec_layers:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    maps = registry.explain(
                        spec.name,
                        model,
                        batch,
                        targets,
                        layer=None if layer == "-" else layer,
                        **options,
                    )
            except (ValueError, TypeError, RuntimeError) as error:
                for name in names:
                    data.errors[f"{name}|{spec.name}|{layer}"] = str(
                        error
                    ).splitlines()[0]
                continue
            quantised = _quantise(maps, map_size)
            for row, (name, cls) in enumerate(
                zip(np.repeat(names, top_classes), targets)
            ):
                data.maps[ExplorerData.key(name, spec.name, cls, layer)] = quantised[
                    row
                ]
    return data


def colour_table(cmap: str = "jet") -> list[list[int]]:
    """The 256 RGB colours of ``cmap``, the same table the page and
    :func:`~xaisurvey.explorer.explorer_grid` use."""
    colours = matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3]
    return (colours * 255).round().astype(int).tolist()


def _data_uri(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=88)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def explorer_html(
    data: ExplorerData, *, element_id: str = "xaisurvey-explorer", cmap: str = "jet"
) -> str:
    """A self-contained HTML fragment: four menus, the photo, and the chosen map over
    it.

    The map is drawn into a ``map_size`` canvas (one pixel per stored value, coloured
    with :func:`colour_table`) that the browser scales smoothly over the photo at 50 %
    opacity. ``window.xaisurveyExplorer[element_id]`` exposes
    ``show(photo, method, cls, layer)``, the current key and the stored maps, so a test
    can check what is drawn.
    """
    payload = {
        "photos": {name: _data_uri(img) for name, img in data.photos.items()},
        "classes": data.classes,
        "methods": data.methods,
        "layers": data.layers,
        "size": data.map_size,
        "maps": {
            key: base64.b64encode(m.tobytes()).decode() for key, m in data.maps.items()
        },
        "errors": data.errors,
        "lut": colour_table(cmap),
    }
    eid = html.escape(element_id)
    side = 336
    return f"""
<div id="{eid}" class="xaisurvey-explorer" style="font-size:0.9em">
  <div style="display:flex;flex-wrap:wrap;gap:0.6em;margin-bottom:0.6em">
    <label>Photo <select data-role="photo"></select></label>
    <label>Method <select data-role="method"></select></label>
    <label>Class <select data-role="class"></select></label>
    <label>Layer <select data-role="layer"></select></label>
  </div>
  <div style="position:relative;width:{side}px;height:{side}px;background:#fff">
    <img data-role="image" alt="the chosen photo"
      style="position:absolute;left:0;top:0;width:{side}px;height:{side}px">
    <canvas data-role="map" width="{data.map_size}" height="{data.map_size}"
      style="position:absolute;left:0;top:0;width:{side}px;height:{side}px;opacity:0.5">
    </canvas>
  </div>
  <p data-role="status" style="margin-top:0.4em"></p>
</div>
<script>
(function() {{
  const D = {json.dumps(payload)};
  const root = document.getElementById({json.dumps(element_id)});
  const el = role => root.querySelector('[data-role="' + role + '"]');
  const fill = (select, items) => {{
    const old = select.value; select.innerHTML = '';
    for (const [value, text] of items) {{
      const o = document.createElement('option');
      o.value = value; o.textContent = text; select.appendChild(o);
    }}
    if (items.some(([v]) => String(v) === old)) select.value = old;
  }};
  const decode = s => Uint8Array.from(atob(s), c => c.charCodeAt(0));
  const state = {{ key: null }};
  function draw() {{
    const photo = el('photo').value, method = el('method').value;
    const cls = el('class').value, layer = el('layer').value;
    el('image').src = D.photos[photo];
    const key = [photo, method, cls, layer].join('|');
    const canvas = el('map'), ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, D.size, D.size);
    state.key = key;
    const error = D.errors[[photo, method, layer].join('|')];
    if (!D.maps[key]) {{
      el('status').textContent = error ? method + ' cannot explain this model: ' + error
                                       : 'no map';
      return;
    }}
    const values = decode(D.maps[key]), image = ctx.createImageData(D.size, D.size);
    for (let i = 0; i < values.length; i++) {{
      const c = D.lut[values[i]];
      image.data[4 * i] = c[0]; image.data[4 * i + 1] = c[1];
      image.data[4 * i + 2] = c[2]; image.data[4 * i + 3] = 255;
    }}
    ctx.putImageData(image, 0, 0);
    const name = D.classes[photo].find(c => String(c[0]) === cls);
    el('status').textContent = method + ' for "' + name[1] + '" (p = '
      + name[2].toFixed(3) + ')' + (layer === '-' ? '' : ' at ' + layer);
  }}
  function refresh() {{
    const photo = el('photo').value, method = el('method').value;
    fill(el('class'), D.classes[photo].map(
      c => [String(c[0]), c[1] + ' (p = ' + c[2].toFixed(3) + ')']));
    fill(el('layer'), D.layers[method].map(
      l => [l, l === '-' ? '(none: the method uses no layer)' : l]));
    draw();
  }}
  fill(el('photo'), Object.keys(D.photos).map(p => [p, p]));
  fill(el('method'), D.methods.map(m => [m, m.replace(/_/g, '-')]));
  el('photo').addEventListener('change', refresh);
  el('method').addEventListener('change', refresh);
  el('class').addEventListener('change', draw);
  el('layer').addEventListener('change', draw);
  refresh();
  window.xaisurveyExplorer = window.xaisurveyExplorer || {{}};
  window.xaisurveyExplorer[root.id] = {{
    data: D, state: state,
    show(photo, method, cls, layer) {{
      el('photo').value = photo; el('method').value = method; refresh();
      el('class').value = String(cls); el('layer').value = layer; draw();
      return state.key;
    }},
  }};
}})();
</script>
"""


def explorer_grid(
    data: ExplorerData,
    photo: str,
    *,
    cls: int | None = None,
    layer: str | None = None,
    columns: int = 6,
    cmap: str = "jet",
) -> Any:
    """A static figure of every method's map for one photo and class (the print version
    of the page)."""
    import matplotlib.pyplot as plt

    if photo not in data.photos:
        raise KeyError(
            f"explorer_grid: unknown photo {photo!r}; photos: {', '.join(data.photos)}"
        )
    cls = data.classes[photo][0][0] if cls is None else cls
    lut = np.asarray(colour_table(cmap), dtype=float) / 255
    rows = -(-len(data.methods) // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(1.6 * columns, 1.7 * rows), squeeze=False
    )
    base = data.photos[photo].astype(float) / 255
    for ax, method in zip(axes.flat, data.methods):
        chosen = (
            layer
            if (layer and layer in data.layers[method])
            else data.layers[method][0]
        )
        stored = data.maps.get(ExplorerData.key(photo, method, cls, chosen))
        ax.axis("off")
        if stored is None:
            ax.set_title(f"{method}\n(cannot explain)", fontsize=6)
            ax.imshow(base)
            continue
        coloured = lut[
            np.asarray(
                Image.fromarray(stored).resize(base.shape[1::-1], Image.BILINEAR)
            )
        ]
        ax.imshow(0.5 * base + 0.5 * coloured)
        ax.set_title(
            method.replace("_", "-") + ("" if chosen == "-" else f"\n{chosen}"),
            fontsize=6,
        )
    for ax in list(axes.flat)[len(data.methods) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig
