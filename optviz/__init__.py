"""optviz: make first-order optimization in deep learning visible.

One optimizer core (:mod:`optviz.optim`) runs on analytic 2-D surfaces
(:mod:`optviz.surfaces`, :mod:`optviz.engine`, drawn by :mod:`optviz.views`) and
on MNIST (:mod:`optviz.mnist`, through a ``torch.optim.Optimizer`` adapter), so
the same optimizer has the same name and colour in every figure.

>>> import optviz
>>> paths = optviz.race("rosenbrock")
>>> optviz.animate("rosenbrock", paths).save("rosen.gif")
>>> optviz.explore("rosenbrock")          # the live explorer, inline in Jupyter
"""
__version__ = "0.1.0"

__all__ = ["race", "plot", "animate", "explore", "__version__"]


def __getattr__(name):
    # Lazy: ``import optviz.optim`` must not pay for matplotlib or autograd.
    if name in ("race", "plot", "animate"):
        from . import api
        return getattr(api, name)
    if name == "explore":   # the web server's libraries load only when the explorer is asked for
        from .explorer import explore
        return explore
    raise AttributeError(f"module 'optviz' has no attribute {name!r}")
