"""A thin layer over ``ipywidgets``: sliders and toggles that redraw a result.

The computation behind every control lives in the topic's module
(``hard_pruning``, ``soft_pruning``, ``distill``) and is tested there; this
module only wires controls to it.
"""

from __future__ import annotations

from typing import Callable


def controls(update: Callable[..., object], **specs):
    """Build a control panel: ``update(**values)`` runs whenever a control is released.

    Each keyword is a control: a ``(min, max, step, value)`` tuple gives a
    slider (float if any number is a float), a list gives a dropdown (first item
    selected), a bool gives a checkbox. What ``update`` prints, displays or
    plots appears below the controls. Returns the ``ipywidgets`` box to display.
    """
    import ipywidgets as w
    from IPython.display import display

    made = {}
    for name, spec in specs.items():
        if isinstance(spec, bool):
            made[name] = w.Checkbox(value=spec, description=name)
        elif isinstance(spec, (list, tuple)) and len(spec) == 4 and all(isinstance(v, (int, float)) for v in spec):
            lo, hi, step, value = spec
            cls = w.FloatSlider if any(isinstance(v, float) for v in spec) else w.IntSlider
            made[name] = cls(min=lo, max=hi, step=step, value=value, description=name, continuous_update=False,
                             style={"description_width": "initial"})
        elif isinstance(spec, list) and spec:
            made[name] = w.Dropdown(options=spec, value=spec[0], description=name)
        else:
            raise ValueError(f"control {name!r}: use (min, max, step, value), a non-empty list, or a bool")
    out = w.Output()

    def redraw(_change=None):
        out.clear_output(wait=True)
        with out:
            result = update(**{k: c.value for k, c in made.items()})
            if result is not None:
                display(result)

    for c in made.values():
        c.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox(list(made.values())), out])
