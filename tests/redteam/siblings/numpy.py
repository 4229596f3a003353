"""A fake numpy placed next to shadow_numpy.py: if the child ever imports it, it says so."""

print("SHADOWED: the fake numpy next to the submission was imported")


def allclose(*args, **kwargs):
    return True
